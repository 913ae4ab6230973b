"""Collections (the namespace) and the containers inside them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Select, cast, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..access import Action, Principal, Role, can, visible_collections
from ..errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from ..names import validate_name
from ..orm import Collection, CollectionMember, Container, Image, Star, Tag, User, utcnow
from . import audit

MAX_DESCRIPTION = 10_000
SORTS = {
    "name": Collection.name.asc(),
    "-name": Collection.name.desc(),
    "created": Collection.created_at.asc(),
    "-created": Collection.created_at.desc(),
    "updated": Collection.updated_at.asc(),
    "-updated": Collection.updated_at.desc(),
}


@dataclass
class CollectionSummary:
    collection: Collection
    containers: int
    images: int
    size: int
    stars: int
    owners: list[str]


def _description(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise InvalidInput(f"a description is a string of at most {MAX_DESCRIPTION} characters")
    return value


def find_collection(session: Session, name: str) -> Collection | None:
    return session.scalar(select(Collection).where(Collection.name == name))


def get_visible(session: Session, principal: Principal, name: str, action: Action = Action.SEE) -> Collection:
    """The collection if ``principal`` may see it; something invisible is reported as missing."""
    validate_name(name, "collection name")
    collection = find_collection(session, name)
    if collection is None or not can(session, principal, Action.SEE, collection):
        raise NotFound(f"no collection {name!r}")
    if action is not Action.SEE and not can(session, principal, action, collection):
        raise Forbidden(f"you may not {action.value.replace('_', ' ')} in collection {name!r}")
    return collection


def require_user(principal: Principal) -> User:
    if principal.user is None:
        raise Unauthorized("this needs a signed-in user or a token")
    return principal.user


def create_collection(
    session: Session,
    principal: Principal,
    name: str,
    *,
    description: str = "",
    private: bool = False,
) -> Collection:
    user = require_user(principal)
    validate_name(name, "collection name")
    if not can(session, principal, Action.CREATE_COLLECTION):
        raise Forbidden("you may not create collections")
    if not isinstance(private, bool):
        raise InvalidInput("'private' must be true or false")
    collection = Collection(name=name, description=_description(description), private=private)
    collection.members.append(CollectionMember(user=user, role=Role.OWNER.value))
    session.add(collection)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"collection {name!r} already exists") from None
    audit.record(session, "collection.create", principal, collection=name)
    return collection


def update_collection(
    session: Session,
    principal: Principal,
    name: str,
    *,
    description: str | None = None,
    private: bool | None = None,
) -> Collection:
    collection = get_visible(session, principal, name)
    if description is not None:
        if not can(session, principal, Action.UPDATE, collection):
            raise Forbidden(f"you may not change collection {name!r}")
        collection.description = _description(description)
    if private is not None:
        if not isinstance(private, bool):
            raise InvalidInput("'private' must be true or false")
        if not can(session, principal, Action.CHANGE_PRIVACY, collection):
            raise Forbidden(f"you may not change the privacy of collection {name!r}")
        collection.private = private
    collection.updated_at = utcnow()
    audit.record(session, "collection.update", principal, collection=name, detail={"private": collection.private})
    return collection


def delete_collection(session: Session, principal: Principal, name: str) -> None:
    collection = get_visible(session, principal, name, Action.DELETE_COLLECTION)
    frozen = session.scalar(
        select(func.count())
        .select_from(Tag)
        .join(Container)
        .where(Container.collection_id == collection.id, Tag.frozen.is_(True))
    )
    if frozen:
        raise Conflict(f"collection {name!r} holds frozen tags; unfreeze them first")
    session.delete(collection)
    audit.record(session, "collection.delete", principal, collection=name)


def _summary_query() -> Select:
    containers = select(func.count(Container.id)).where(Container.collection_id == Collection.id).scalar_subquery()
    images = (
        select(func.count(Image.id))
        .join(Container)
        .where(Container.collection_id == Collection.id, Image.uploaded.is_(True))
        .scalar_subquery()
    )
    size = (
        select(cast(func.coalesce(func.sum(Image.size), 0), BigInteger))
        .join(Container)
        .where(Container.collection_id == Collection.id, Image.uploaded.is_(True))
        .scalar_subquery()
    )
    stars = select(func.count(Star.id)).where(Star.collection_id == Collection.id).scalar_subquery()
    return select(Collection, containers, images, size, stars)


def _owners(session: Session, ids: list[int]) -> dict[int, list[str]]:
    owners: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        rows = session.execute(
            select(CollectionMember.collection_id, User.name)
            .join(User)
            .where(CollectionMember.collection_id.in_(ids), CollectionMember.role == Role.OWNER.value)
            .order_by(User.name)
        )
        for collection_id, user_name in rows:
            owners[collection_id].append(user_name)
    return owners


def list_collections(
    session: Session,
    principal: Principal,
    *,
    query: str | None = None,
    sort: str = "name",
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[CollectionSummary], int]:
    """One page of the collections ``principal`` may see, and how many there are in all."""
    if sort not in SORTS:
        raise InvalidInput(f"invalid sort {sort!r}: use one of {', '.join(SORTS)}")
    where = [visible_collections(principal)]
    if query:
        pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        in_containers = select(Container.collection_id).where(Container.name.like(pattern, escape="\\"))
        where.append(
            or_(
                Collection.name.like(pattern, escape="\\"),
                func.lower(Collection.description).like(pattern, escape="\\"),
                Collection.id.in_(in_containers),
            )
        )
    total = session.scalar(select(func.count(Collection.id)).where(*where)) or 0
    rows = session.execute(
        _summary_query().where(*where).order_by(SORTS[sort], Collection.id).offset(offset).limit(limit)
    ).all()
    owners = _owners(session, [row[0].id for row in rows])
    return [CollectionSummary(c, n, i, s, st, owners[c.id]) for c, n, i, s, st in rows], total


def summarise(session: Session, collection: Collection) -> CollectionSummary:
    row = session.execute(_summary_query().where(Collection.id == collection.id)).one()
    return CollectionSummary(row[0], row[1], row[2], row[3], row[4], _owners(session, [collection.id])[collection.id])


def list_containers(session: Session, collection: Collection) -> list[Container]:
    return list(
        session.scalars(select(Container).where(Container.collection_id == collection.id).order_by(Container.name))
    )


def get_container(session: Session, collection: Collection, name: str) -> Container:
    validate_name(name, "container name")
    container = session.scalar(
        select(Container).where(Container.collection_id == collection.id, Container.name == name)
    )
    if container is None:
        raise NotFound(f"no container {collection.name}/{name}")
    return container


def delete_container(session: Session, principal: Principal, collection_name: str, name: str) -> None:
    collection = get_visible(session, principal, collection_name, Action.DELETE_IMAGE)
    container = get_container(session, collection, name)
    if any(tag.frozen for tag in container.tags):
        raise Conflict(f"{collection_name}/{name} has frozen tags; unfreeze them first")
    session.delete(container)
    collection.updated_at = utcnow()
    audit.record(session, "container.delete", principal, collection=collection_name, container=name)
