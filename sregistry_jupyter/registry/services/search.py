"""Searches of the library and shub surfaces, in SQL, bounded, with everything their answers show loaded.

A search matches names containing the query (case-insensitively, wildcards escaped) in the collections the
caller may see. The matching runs in the database: on PostgreSQL a trigram index (``pg_trgm``, migration
0005) answers ``LIKE '%...%'`` on container and collection names without reading the tables; SQLite scans
the names' indexes, which is quick at the sizes a single-file registry holds. Every result list is capped
(``LIMIT``), and the rows each answer shows (owners, tags, a container's images) are loaded by a fixed number
of batched queries, whatever the number of rows, so a search costs the same few statements at a hundred
images as at a million.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session, contains_eager, joinedload

from ..access import Principal, visible_collections
from ..orm import Collection, CollectionMember, Container, Image, Tag, User

COLLECTIONS_LIMIT = 100
CONTAINERS_LIMIT = 100
IMAGES_LIMIT = 200
TAGS_LIMIT = 1000


def containing(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere (lower-cased), with the wildcards in it escaped."""
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def like(column: ColumnElement[str], text: str) -> ColumnElement[bool]:
    return column.like(containing(text), escape="\\")


@dataclass
class UserView:
    name: str


@dataclass
class MemberView:
    role: str
    user: UserView


@dataclass
class IdView:
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


@dataclass
class TagView:
    name: str
    arch: str
    image_id: int


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
    images: list[ImageView] = field(default_factory=list)


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


def _views(session: Session, view: type, query: Select) -> list:
    return [view(*row) for row in session.execute(query)]


def _complete(session: Session, results: LibraryResults) -> None:
    """Attach to the found rows what their answers show, in one query per kind of row, whatever the count:
    each collection's owners (its library entity) and containers' ids, each container's tags and images,
    each image's tags, container and collection."""
    containers = {c.id: c for c in results.containers}
    wanted = {i.container_id for i in results.images} - set(containers)
    if wanted:
        for extra in _views(session, ContainerView, select(*CONTAINER_COLUMNS).where(Container.id.in_(wanted))):
            containers[extra.id] = extra
    collections = {c.id: c for c in results.collections}
    wanted = {c.collection_id for c in containers.values()} - set(collections)
    if wanted:
        for extra in _views(session, CollectionView, select(*COLLECTION_COLUMNS).where(Collection.id.in_(wanted))):
            collections[extra.id] = extra
    for container in containers.values():
        container.collection = collections[container.collection_id]
    if collections:
        owners = session.execute(
            select(CollectionMember.collection_id, User.name)
            .join(User, User.id == CollectionMember.user_id)
            .where(CollectionMember.collection_id.in_(collections), CollectionMember.role == "owner")
        )
        for collection_id, name in owners:
            collections[collection_id].members.append(MemberView("owner", UserView(name)))
    listed = {c.id: c for c in results.collections}
    if listed:
        for collection_id, container_id in session.execute(
            select(Container.collection_id, Container.id).where(Container.collection_id.in_(listed))
        ):
            listed[collection_id].containers.append(IdView(container_id))
    found = {c.id: c for c in results.containers}
    if found:
        for image in _views(session, ImageView, select(*IMAGE_COLUMNS).where(Image.container_id.in_(found))):
            found[image.container_id].images.append(image)
    images = {i.id: i for i in results.images}
    for image in images.values():
        image.container = containers[image.container_id]
    tag_columns = (Tag.container_id, Tag.name, Tag.arch, Tag.image_id)
    if found:  # two queries rather than one with OR, which no index answers
        for container_id, name, arch, image_id in session.execute(
            select(*tag_columns).where(Tag.container_id.in_(found))
        ):
            found[container_id].tags.append(TagView(name, arch, image_id))
    if images:
        for _, name, arch, image_id in session.execute(select(*tag_columns).where(Tag.image_id.in_(images))):
            images[image_id].tags.append(TagView(name, arch, image_id))


def library_search(
    session: Session, principal: Principal, value: str, arch: str | None, signed: str | None
) -> LibraryResults:
    """Collections, containers and uploaded images whose (collection or container) name contains ``value``."""
    visible = visible_collections(principal)
    collections = _views(
        session,
        CollectionView,
        select(*COLLECTION_COLUMNS)
        .where(visible, like(Collection.name, value))
        .order_by(Collection.name)
        .limit(COLLECTIONS_LIMIT),
    )
    containers = _views(
        session,
        ContainerView,
        select(*CONTAINER_COLUMNS)
        .join(Container.collection)
        .where(visible, like(Container.name, value))
        .order_by(Collection.name, Container.name)
        .limit(CONTAINERS_LIMIT),
    )
    # The containers that match by their name or their collection's, found first from the names' indexes,
    # so that only their images are read (by the index on images.container_id), not every image.
    matching = select(Container.id).where(
        or_(
            like(Container.name, value),
            Container.collection_id.in_(select(Collection.id).where(like(Collection.name, value))),
        )
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


def visible_tags(
    session: Session, principal: Principal, *conditions: ColumnElement[bool], limit: int | None = TAGS_LIMIT
) -> list[Tag]:
    """Tags (with their image, container and collection) in collections ``principal`` may see, in the order
    the shub surface lists them, at most ``limit`` of them."""
    query = (
        select(Tag)
        .join(Tag.container)
        .join(Container.collection)
        .where(visible_collections(principal), *conditions)
        .options(contains_eager(Tag.container).contains_eager(Container.collection), joinedload(Tag.image))
        .order_by(Collection.name, Container.name, Tag.name, Tag.arch)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query).unique())


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
    conditions = [like(Container.name, name)]
    if collection is not None:
        conditions.append(like(Collection.name, collection))
    if tag is not None:
        conditions.append(Tag.name == tag)
    rows = session.execute(
        select(Image.id, Collection.name, Container.name, Tag.name, Image.digest, Image.uploaded_at)
        .select_from(Tag)
        .join(Tag.container)
        .join(Container.collection)
        .join(Tag.image)
        .where(visible_collections(principal), *conditions)
        .order_by(Collection.name, Container.name, Tag.name, Tag.arch)
        .limit(TAGS_LIMIT)
    )
    unique: dict[str, TagRow] = {}
    for row in rows:
        found = TagRow(*row)
        unique.setdefault(found.uri, found)
    return list(unique.values())
