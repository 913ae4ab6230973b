"""Searches of the library and shub surfaces, in SQL, bounded, with everything their answers show loaded.

A search matches names containing the query (case-insensitively, wildcards escaped) in the collections the
caller may see. The matching runs in the database from an index of the names' three-character substrings:
on PostgreSQL the trigram GIN indexes (``pg_trgm``, migrations 0005 and 0007) answer ``LIKE '%...%'``
themselves; on SQLite the FTS5 ``trigram`` tables of migrations 0007 (``containers_fts``, ``collections_fts``)
and 0010 (``image_labels_fts``, for the label search) find the candidate rows with a phrase ``MATCH``, and
the same ``LIKE`` as everywhere then decides, so the answer is exactly the ``LIKE``'s whichever way the rows
were found. A query shorter than three characters has no
trigram to look up: it is the plain ``LIKE``, a scan of the names' index (short, and still capped below).
Every result list is capped (``LIMIT``), and the rows each answer shows (owners, tags, a container's images)
are loaded by a fixed number of batched queries, whatever the number of rows, so a search costs the same few
statements at a hundred images as at a million.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    String,
    Subquery,
    and_,
    bindparam,
    func,
    literal_column,
    select,
    table,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from ..access import Principal, visible_collections
from ..orm import Collection, CollectionMember, Container, Image, ImageLabel, Tag, User

COLLECTIONS_LIMIT = 100
LISTED_TAGS = 10
CONTAINERS_LIMIT = 50
IMAGES_LIMIT = 200
TAGS_LIMIT = 1000
ROWS_PER_LISTED_TAG = 3


def containing(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere (lower-cased), with the wildcards in it escaped."""
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def like(column: ColumnElement[str], text: str) -> ColumnElement[bool]:
    return column.like(containing(text), escape="\\")


TRIGRAM = 3
SEARCH_TABLES = {Container: "containers_fts", Collection: "collections_fts", ImageLabel: "image_labels_fts"}


def is_search_table(name: str) -> bool:
    """True for SQLite's full-text tables of names and labels and the shadow tables FTS5 keeps beside them,
    which the migrations make and the models do not describe."""
    return any(name == fts or name.startswith(f"{fts}_") for fts in SEARCH_TABLES.values())


def phrase(text: str) -> str:
    """An FTS5 query matching ``text`` as one string (double quotes doubled), case-insensitively."""
    return '"' + text.replace('"', '""') + '"'


def indexed(
    session: Session, column: InstrumentedAttribute[str], text: str, matches: ColumnElement[bool]
) -> ColumnElement[bool]:
    """``matches`` (a ``LIKE`` of ``column`` containing ``text``), narrowed on SQLite to the rows whose
    ``column`` the trigram table finds holding ``text`` when it has a trigram (they include every row the
    ``LIKE`` matches, so the answer is the ``LIKE``'s)."""
    if session.get_bind().dialect.name != "sqlite" or len(text) < TRIGRAM:
        return matches
    model = column.class_
    fts = SEARCH_TABLES[model]
    query = f"{column.key} : {phrase(text)}"
    found = select(literal_column("rowid")).select_from(table(fts)).where(literal_column(fts).op("MATCH")(query))
    return and_(model.id.in_(found), matches)


def name_contains(session: Session, model: type[Container] | type[Collection], text: str) -> ColumnElement[bool]:
    """``model.name`` contains ``text``, found from its trigram index."""
    return indexed(session, model.name, text, like(model.name, text))


def label_contains(session: Session, column: InstrumentedAttribute[str], text: str) -> ColumnElement[bool]:
    """A label's ``column`` (key or value) contains ``text`` case-insensitively, found from its trigram index."""
    return indexed(session, column, text, column.ilike(containing(text), escape="\\"))


@dataclass
class UserView:
    name: str


@dataclass
class MemberView:
    role: str
    user: UserView


class IdView(NamedTuple):
    id: int


@dataclass
class CollectionView:
    """What the library's JSON shows of a collection, read as plain columns (ORM objects cost ten times more)."""

    id: int
    name: str
    description: str
    private: bool
    created_at: dt.datetime
    members: list[MemberView] = field(default_factory=list)
    containers: list[IdView] = field(default_factory=list)


class TagView(NamedTuple):
    name: str
    arch: str
    image_id: int


class ContainerImage(NamedTuple):
    """What a container's answer shows of each of its uploaded images."""

    id: int
    size: int
    downloads: int
    uploaded: bool = True


@dataclass
class ImageView:
    id: int
    container_id: int
    digest: str
    description: str
    size: int
    uploaded: bool
    signed: bool
    arch: str
    downloads: int
    created_at: dt.datetime
    tags: list[TagView] = field(default_factory=list)
    container: ContainerView | None = None


@dataclass
class ContainerView:
    id: int
    collection_id: int
    name: str
    description: str
    created_at: dt.datetime
    collection: CollectionView | None = None
    tags: list[TagView] = field(default_factory=list)
    images: list[ContainerImage] = field(default_factory=list)


COLLECTION_COLUMNS = (Collection.id, Collection.name, Collection.description, Collection.private, Collection.created_at)
CONTAINER_COLUMNS = (Container.id, Container.collection_id, Container.name, Container.description, Container.created_at)
IMAGE_COLUMNS = (
    Image.id,
    Image.container_id,
    Image.digest,
    Image.description,
    Image.size,
    Image.uploaded,
    Image.signed,
    Image.arch,
    Image.downloads,
    Image.created_at,
)


@dataclass
class LibraryResults:
    collections: list[CollectionView]
    containers: list[ContainerView]
    images: list[ImageView]


def _rows(session: Session, query: Select) -> Sequence[Row[Any]]:
    """``query``'s rows from the session's connection, fetched at once: these selects name columns only, the
    ORM's statement handling cost about a third of each one's time, and fetching row by row as much again."""
    return session.connection().execute(query).all()


def among(session: Session, column: InstrumentedAttribute[int], ids: Iterable[int]) -> ColumnElement[bool]:
    """``column IN ids`` with the ids as one parameter (an array on PostgreSQL, a JSON list that SQLite's
    ``json_each`` reads), so that the statement's text is the same whatever their number and it is compiled
    and parsed once: an ``IN`` list of a hundred parameters cost several milliseconds each time."""
    values = list(ids)
    if session.get_bind().dialect.name == "postgresql":
        return column == func.any(bindparam(None, values, type_=ARRAY(Integer)))
    each = func.json_each(bindparam(None, json.dumps(values), type_=String))
    return column.in_(select(literal_column("value")).select_from(each))


def _views(session: Session, view: type, query: Select) -> list:
    return [view(*row) for row in _rows(session, query)]


def _complete(session: Session, results: LibraryResults) -> None:
    """Attach to the found rows what their answers show, in one query per kind of row, whatever the count:
    each collection's owners (its library entity) and containers' ids, each container's tags and images,
    each image's tags, container and collection. The containers and collections not found themselves are read
    whenever there are images (or containers) at all, even if none is missing, so that the number of
    statements does not depend on how the lists overlap."""
    containers = {c.id: c for c in results.containers}
    wanted = {i.container_id for i in results.images} - set(containers)
    if results.images:
        for extra in _views(
            session, ContainerView, select(*CONTAINER_COLUMNS).where(among(session, Container.id, wanted))
        ):
            containers[extra.id] = extra
    collections = {c.id: c for c in results.collections}
    wanted = {c.collection_id for c in containers.values()} - set(collections)
    if containers:
        for extra in _views(
            session, CollectionView, select(*COLLECTION_COLUMNS).where(among(session, Collection.id, wanted))
        ):
            collections[extra.id] = extra
    for container in containers.values():
        container.collection = collections[container.collection_id]
    if collections:
        owners = _rows(
            session,
            select(CollectionMember.collection_id, User.name)
            .join(User, User.id == CollectionMember.user_id)
            .where(among(session, CollectionMember.collection_id, collections), CollectionMember.role == "owner"),
        )
        for collection_id, name in owners:
            collections[collection_id].members.append(MemberView("owner", UserView(name)))
    listed = {c.id: c for c in results.collections}
    if listed:
        for collection_id, container_id in _rows(
            session,
            select(Container.collection_id, Container.id).where(among(session, Container.collection_id, listed)),
        ):
            listed[collection_id].containers.append(IdView(container_id))
    found = {c.id: c for c in results.containers}
    if found:
        for container_id, *shown in _rows(
            session,
            select(Image.container_id, Image.id, Image.size, Image.downloads).where(
                among(session, Image.container_id, found), Image.uploaded.is_(True)
            ),
        ):
            found[container_id].images.append(ContainerImage(*shown))
    images = {i.id: i for i in results.images}
    for image in images.values():
        image.container = containers[image.container_id]
    tag_columns = (Tag.container_id, Tag.name, Tag.arch, Tag.image_id)
    if found:  # two queries rather than one with OR, which no index answers
        by_container = select(*tag_columns).where(among(session, Tag.container_id, found))
        for container_id, name, arch, image_id in _rows(session, by_container):
            found[container_id].tags.append(TagView(name, arch, image_id))
    if images:
        for _, name, arch, image_id in _rows(session, select(*tag_columns).where(among(session, Tag.image_id, images))):
            images[image_id].tags.append(TagView(name, arch, image_id))


def library_search(
    session: Session, principal: Principal, value: str, arch: str | None, signed: str | None
) -> LibraryResults:
    """Collections, containers and uploaded images whose (collection or container) name contains ``value``:
    at most ``COLLECTIONS_LIMIT`` collections, ``CONTAINERS_LIMIT`` containers (each with all its tags and
    images) and ``IMAGES_LIMIT`` images. Fifty containers, not a hundred: the clients print the images, and
    each container listed brings every tag and image id it has, which was most of what an answer read."""
    visible = visible_collections(principal)
    collections = _views(
        session,
        CollectionView,
        select(*COLLECTION_COLUMNS)
        .where(visible, name_contains(session, Collection, value))
        .order_by(Collection.name)
        .limit(COLLECTIONS_LIMIT),
    )
    containers = _views(
        session,
        ContainerView,
        select(*CONTAINER_COLUMNS)
        .join(Container.collection)
        .where(visible, name_contains(session, Container, value))
        .order_by(Collection.name, Container.name)
        .limit(CONTAINERS_LIMIT),
    )
    # The containers that match by their name or their collection's, found first from the names' indexes,
    # so that only their images are read (by the index on images.container_id), not every image. Two
    # selects rather than one with OR: the planner estimates each from its index, and the OR of them as
    # most of the table (PostgreSQL then walked every visible container in name order, 200 ms at a million).
    matching = union_all(
        select(Container.id).where(name_contains(session, Container, value)),
        select(Container.id).join(Container.collection).where(name_contains(session, Collection, value)),
    )
    query = (
        select(*IMAGE_COLUMNS)
        .join(Image.container)
        .join(Container.collection)
        .where(visible, Image.uploaded.is_(True), Image.container_id.in_(matching))
        .order_by(Collection.name, Container.name, Image.id)
        .limit(IMAGES_LIMIT)
    )
    if arch:
        query = query.where(Image.arch == arch)
    if signed == "true":
        query = query.where(Image.signed.is_(True))
    results = LibraryResults(collections, containers, _views(session, ImageView, query))
    _complete(session, results)
    return results


class TagRef(NamedTuple):
    """A tag as shub listings show it, as plain columns."""

    image_id: int
    collection_id: int
    collection: str
    container: str
    tag: str

    @property
    def uri(self) -> str:
        return f"{self.collection}/{self.container}:{self.tag}"


TAG_REF_COLUMNS = (Tag.image_id, Container.collection_id, Collection.name, Container.name, Tag.name)
TAG_ORDER = (Collection.name, Container.name, Tag.name, Tag.arch)


def first_of_each(rows: Iterable[Sequence[Any]], key: slice) -> Iterator[Sequence[Any]]:
    """The first of each run of ``rows`` equal in their ``key`` columns: the rows of a tag on several
    architectures come together in the shub order, so comparing each with the one before is enough."""
    last = None
    for row in rows:
        this = row[key]
        if this != last:
            last = this
            yield row


def unique_refs(rows: Iterable[Sequence[Any]]) -> list[TagRef]:
    """One ``TagRef`` per ``collection/container:tag`` (a tag may exist for several architectures), from rows
    in the shub order."""
    return [TagRef(*row) for row in first_of_each(rows, slice(2, 5))]


def collection_tags(session: Session, collection_id: int) -> list[TagRef]:
    """The tags of one collection (which the caller has been allowed to see), in the shub order, at most
    ``TAGS_LIMIT`` rows read."""
    rows = _rows(
        session,
        select(*TAG_REF_COLUMNS)
        .select_from(Tag)
        .join(Tag.container)
        .join(Container.collection)
        .where(Container.collection_id == collection_id)
        .order_by(*TAG_ORDER)
        .limit(TAGS_LIMIT),
    )
    return unique_refs(rows)


class ListedCollection(NamedTuple):
    """What the shub collection list shows of a collection, with the first of its tags."""

    id: int
    name: str
    created_at: dt.datetime
    updated_at: dt.datetime
    tags: list[TagRef]


def listed_collections(session: Session, principal: Principal) -> list[ListedCollection]:
    """The first ``COLLECTIONS_LIMIT`` visible collections by name, each with its first ``LISTED_TAGS`` tags
    (by container name, then tag name), in two statements whatever the registry holds.

    Each collection's tags are read from its first ``LISTED_TAGS * ROWS_PER_LISTED_TAG`` tag rows only, which
    the database walks in order from the indexes of containers by name and of tags by container and name and
    stops at: a tag is a row per architecture, so a collection whose first tags each exist for more than
    three architectures lists fewer than ``LISTED_TAGS``. What is read grows with the caps, not with what
    the collections hold."""
    listed = (
        select(Collection.id, Collection.name, Collection.created_at, Collection.updated_at)
        .where(visible_collections(principal))
        .order_by(Collection.name)
        .limit(COLLECTIONS_LIMIT)
    )
    found = {row[0]: ListedCollection(*row, []) for row in _rows(session, listed)}
    if found:
        for ref in first_tags(session, listed.subquery(), LISTED_TAGS * ROWS_PER_LISTED_TAG):
            tags = found[ref.collection_id].tags
            if len(tags) < LISTED_TAGS and (not tags or tags[-1].uri != ref.uri):
                tags.append(ref)
    return list(found.values())


def first_tags(session: Session, collections: Subquery, rows: int) -> list[TagRef]:
    """The first ``rows`` tag rows of each of ``collections`` (id and name), as ``TAG_REF_COLUMNS`` in the
    shub order: a lateral join on PostgreSQL, a correlated ``IN`` that SQLite runs once per collection (it
    has no lateral joins), each answered by walking the indexes in order up to the ``LIMIT``."""
    inner_tag, inner_container = aliased(Tag), aliased(Container)
    first = (
        select(
            inner_tag.id, inner_tag.image_id, inner_container.name.label("container"), inner_tag.name, inner_tag.arch
        )
        .select_from(inner_container)
        .join(inner_tag, inner_tag.container_id == inner_container.id)
        .where(inner_container.collection_id == collections.c.id)
        .order_by(inner_container.name, inner_tag.name, inner_tag.arch)
        .limit(rows)
    )
    if session.get_bind().dialect.name == "postgresql":
        lateral = first.lateral()
        c = lateral.c
        query = select(c.image_id, collections.c.id, collections.c.name, c.container, c.name).select_from(
            collections.join(lateral, true())
        )
        order = (collections.c.name, c.container, c.name, c.arch)
    else:
        ids = first.with_only_columns(inner_tag.id).correlate(collections)
        query = (
            select(Tag.image_id, collections.c.id, collections.c.name, Container.name, Tag.name)
            .select_from(collections)
            .join(Tag, Tag.id.in_(ids))
            .join(Container, Container.id == Tag.container_id)
        )
        order = (collections.c.name, Container.name, Tag.name, Tag.arch)
    return [TagRef(*row) for row in _rows(session, query.order_by(*order))]


class LabelMatch(NamedTuple):
    key: str
    value: str
    uri: str


def label_search(session: Session, principal: Principal, key: str | None, value: str | None) -> list[LabelMatch]:
    """SIF labels (``image_labels``) whose key and value contain the query, case-insensitively, with the
    tags of visible collections that carry them, ordered by label, at most ``TAGS_LIMIT`` rows read."""
    conditions = [visible_collections(principal)]
    if key is not None:
        conditions.append(label_contains(session, ImageLabel.key, key))
    if value is not None:
        conditions.append(label_contains(session, ImageLabel.value, value))
    rows = _rows(
        session,
        select(ImageLabel.key, ImageLabel.value, Collection.name, Container.name, Tag.name)
        .select_from(ImageLabel)
        .join(Tag, Tag.image_id == ImageLabel.image_id)
        .join(Tag.container)
        .join(Container.collection)
        .where(*conditions)
        .order_by(ImageLabel.key, ImageLabel.value, *TAG_ORDER)
        .limit(TAGS_LIMIT),
    )
    return [LabelMatch(k, v, f"{collection}/{container}:{tag}") for k, v, collection, container, tag in rows]


class TagRow(NamedTuple):
    """One tag as the shub search lists it: plain columns, no ORM objects to build for each row."""

    image_id: int
    collection: str
    container: str
    tag: str
    digest: str
    uploaded_at: dt.datetime | None

    @property
    def uri(self) -> str:
        return f"{self.collection}/{self.container}:{self.tag}"


def shub_container_search(
    session: Session, principal: Principal, collection: str | None, name: str, tag: str | None
) -> list[TagRow]:
    """Tags of containers whose name (and collection's name) contain the query, in visible collections, one
    per ``collection/container:tag`` (a tag may exist for several architectures), at most ``TAGS_LIMIT``."""
    conditions = [name_contains(session, Container, name)]
    if collection is not None:
        conditions.append(name_contains(session, Collection, collection))
    if tag is not None:
        conditions.append(Tag.name == tag)
    rows = _rows(
        session,
        select(Image.id, Collection.name, Container.name, Tag.name, Image.digest, Image.uploaded_at)
        .select_from(Tag)
        .join(Tag.container)
        .join(Container.collection)
        .join(Tag.image)
        .where(visible_collections(principal), *conditions)
        .order_by(Collection.name, Container.name, Tag.name, Tag.arch)
        .limit(TAGS_LIMIT),
    )
    return [TagRow(*row) for row in first_of_each(rows, slice(1, 4))]
