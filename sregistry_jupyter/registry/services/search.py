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
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session, contains_eager, defer, joinedload, selectinload
from sqlalchemy.orm.strategy_options import _AbstractLoad

from ..access import Principal, visible_collections
from ..orm import Collection, CollectionMember, Container, Image, Tag

COLLECTIONS_LIMIT = 100
CONTAINERS_LIMIT = 100
IMAGES_LIMIT = 200
TAGS_LIMIT = 1000


def containing(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere (lower-cased), with the wildcards in it escaped."""
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def like(column: ColumnElement[str], text: str) -> ColumnElement[bool]:
    return column.like(containing(text), escape="\\")


def owners_loaded() -> _AbstractLoad:
    """Load collections' owners (their library ``entity``) with them, in one batched query for all rows."""
    return selectinload(Collection.members).joinedload(CollectionMember.user)


@dataclass
class LibraryResults:
    collections: list[Collection]
    containers: list[Container]
    images: list[Image]


def library_search(
    session: Session, principal: Principal, value: str, arch: str | None, signed: str | None
) -> LibraryResults:
    """Collections, containers and uploaded images whose (collection or container) name contains ``value``."""
    visible = visible_collections(principal)
    collections = session.scalars(
        select(Collection)
        .where(visible, like(Collection.name, value))
        .order_by(Collection.name)
        .limit(COLLECTIONS_LIMIT)
        .options(owners_loaded(), selectinload(Collection.containers).load_only(Container.id))
    ).all()
    containers = session.scalars(
        select(Container)
        .join(Container.collection)
        .where(visible, like(Container.name, value))
        .order_by(Collection.name, Container.name)
        .limit(CONTAINERS_LIMIT)
        .options(
            contains_eager(Container.collection).selectinload(Collection.members).joinedload(CollectionMember.user),
            selectinload(Container.tags).load_only(Tag.container_id, Tag.name, Tag.arch, Tag.image_id),
            selectinload(Container.images).load_only(
                Image.id, Image.container_id, Image.uploaded, Image.size, Image.downloads
            ),
        )
    ).all()
    matching = or_(
        Container.id.in_(select(Container.id).where(like(Container.name, value))),
        Container.collection_id.in_(select(Collection.id).where(like(Collection.name, value))),
    )
    query = (
        select(Image)
        .join(Image.container)
        .join(Container.collection)
        .where(visible, Image.uploaded.is_(True), matching)
        .order_by(Collection.name, Container.name, Image.id)
        .limit(IMAGES_LIMIT)
        .options(
            contains_eager(Image.container)
            .contains_eager(Container.collection)
            .selectinload(Collection.members)
            .joinedload(CollectionMember.user),
            selectinload(Image.tags).load_only(Tag.image_id, Tag.name),
            defer(Image.sif),
        )
    )
    if arch:
        query = query.where(Image.arch == arch)
    if signed == "true":
        query = query.where(Image.signed.is_(True))
    return LibraryResults(list(collections), list(containers), list(session.scalars(query).all()))


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
