"""Collections (the namespace) and the containers inside them.

Collection names are global, so a name someone else holds cannot be had, whether their collection is public
or private. Whoever would create a collection under such a name, or push into one in which they have no role,
hears only that the name is taken (``name_taken``): the same status and words for a private collection as
for a public one, and nothing about what is in it. Refusals that no collection could lift (no identity,
too weak a token scope) are given before anything is looked up (``require``).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import BigInteger, ColumnElement, Row, Select, bindparam, cast, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from ..access import (
    Action,
    Principal,
    Role,
    Visibility,
    can,
    decide,
    missing_identity,
    refusal,
    role_of,
    scope_refusal,
    see_and_can,
    visibility_of,
    visibility_params,
    visible_collections_where,
)
from ..errors import Conflict, CredentialRequired, Forbidden, InvalidInput, NotFound
from ..names import validate_name
from ..orm import Collection, CollectionMember, CollectionUsage, Container, Image, Tag, User, utcnow
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
# Sorts by a figure of the summary (its column's label in ``SUMMARY_QUERY``).
SUMMARY_SORTS = {"size": "size", "-size": "size", "stars": "stars", "-stars": "stars"}


class CollectionColumns(Protocol):
    """What a summary shows of the collection itself."""

    id: int
    name: str
    description: str
    private: bool
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass
class CollectionSummary:
    """A collection with its figures; ``collection`` is its row (or ORM object): any ``CollectionColumns``."""

    collection: CollectionColumns
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


def require(principal: Principal, action: Action) -> None:
    """Refuse what no collection could allow, before anything is looked up: an action beyond seeing and
    pulling without an identity (401, asking for a credential), or one the credential's scope rules out
    (403, naming the scope needed). The answer is then the same whether the target exists, is hidden or
    is in plain view."""
    missing = missing_identity(principal, action)
    if missing is not None:
        raise CredentialRequired(missing)
    scoped = scope_refusal(principal, action)
    if scoped is not None:
        raise Forbidden(scoped)


def get_visible(session: Session, principal: Principal, name: str, action: Action = Action.SEE) -> Collection:
    """The collection if ``principal`` may see it; something invisible is reported as missing."""
    require(principal, action)
    validate_name(name, "collection name")
    collection = find_collection(session, name)
    seen, allowed = see_and_can(session, principal, action, collection)
    if not seen:
        raise NotFound(f"no collection {name!r}")
    if not allowed:
        raise Forbidden(refusal(principal, action, name, role_of(session, principal.user, collection)))
    return collection


def name_taken(name: str) -> Conflict:
    """The one answer to creating, or pushing into, a collection whose name someone else holds."""
    return Conflict(f"collection name {name!r} is taken")


def check_push_into(session: Session, principal: Principal, collection: Collection) -> None:
    """Refuse a push into an existing collection unless ``principal`` may push there.

    Someone with no role in it hears only that the name is taken (``name_taken``), alike for a public and a
    private collection; a member whose role does not allow pushing hears why. The caller has already
    checked the scope (``require``), so the refusal never depends on it.
    """
    role = role_of(session, principal.user, collection)
    if decide(principal, Action.PUSH, collection, role):
        return
    if role is None:
        raise name_taken(collection.name)
    raise Forbidden(refusal(principal, Action.PUSH, collection.name, role))


def require_user(principal: Principal) -> User:
    if principal.user is None:
        raise CredentialRequired("this needs a signed-in user or a token")
    return principal.user


def check_may_create(session: Session, principal: Principal) -> None:
    """Forbidden, saying why, unless ``principal`` may create a collection now."""
    require(principal, Action.CREATE_COLLECTION)
    if can(session, principal, Action.CREATE_COLLECTION):
        return
    if decide(principal, Action.CREATE_COLLECTION, None, None):
        limit = principal.policy.collection_limit
        raise Forbidden(
            f"you already own {limit} collection{'s' if limit != 1 else ''}, the most this registry allows; "
            "push into one of them or ask the registry's staff"
        )
    raise Forbidden("only the registry's staff may create collections here; ask them to create one for you")


def _serialise_creations(session: Session, user: User) -> None:
    """Write-lock the creator's row so that concurrent creations by one user are counted one at a time.

    On PostgreSQL this is a row lock that a second creation waits for, after which it counts the first
    one's collection; on SQLite it takes the database's write lock before counting. Without it two
    simultaneous creations could both find the user under the collection limit.
    """
    session.execute(
        update(User).where(User.id == user.id).values(name=User.name).execution_options(synchronize_session=False)
    )


def new_collection(
    session: Session,
    principal: Principal,
    name: str,
    *,
    private: bool | None = None,
    description: str = "",
) -> Collection:
    """Make a collection owned by ``principal``: the only place one is made, whatever the surface.

    ``access`` decides whether the user may create it (staff and admins always; users if the registry
    lets them and they are under the collection limit) and the registry's policy decides its privacy
    (``private`` None: not asked for). A name taken meanwhile raises IntegrityError for the caller to
    retry or report.
    """
    require(principal, Action.CREATE_COLLECTION)
    user = require_user(principal)
    validate_name(name, "collection name")
    if private is not None and not isinstance(private, bool):
        raise InvalidInput("'private' must be true or false")
    _serialise_creations(session, user)
    check_may_create(session, principal)
    collection = Collection(
        name=name, description=_description(description), private=principal.policy.default_privacy(private)
    )
    collection.members.append(CollectionMember(user_id=user.id, role=Role.OWNER.value))
    session.add(collection)
    session.flush()
    audit.record(session, "collection.create", principal, collection=name, detail={"private": collection.private})
    return collection


def create_collection(
    session: Session,
    principal: Principal,
    name: str,
    *,
    description: str = "",
    private: bool | None = None,
) -> Collection:
    """Create a collection by name (native and library APIs): a name that exists is a conflict."""
    try:
        return new_collection(session, principal, name, private=private, description=description)
    except IntegrityError:
        session.rollback()
        raise name_taken(name) from None


def update_collection(
    session: Session,
    principal: Principal,
    name: str,
    *,
    description: str | None = None,
    private: bool | None = None,
) -> Collection:
    """Change what is asked; a request asking nothing still needs the right to change the collection."""
    changes = ((description, Action.UPDATE), (private, Action.CHANGE_PRIVACY))
    asked = [action for value, action in changes if value is not None] or [Action.UPDATE]
    for action in asked:
        require(principal, action)
    collection = get_visible(session, principal, name)
    role = role_of(session, principal.user, collection)
    for action in asked:
        if not decide(principal, action, collection, role):
            raise Forbidden(refusal(principal, action, name, role))
    if description is not None:
        collection.description = _description(description)
    if private is not None:
        if not isinstance(private, bool):
            raise InvalidInput("'private' must be true or false")
        if not private and principal.policy.private_only:
            raise Forbidden("this registry keeps every collection private; none can be made public")
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


def _figures() -> list[ColumnElement]:
    """A collection's figures as columns: containers, images, size and stars read from ``CollectionUsage``
    (kept by triggers), owners' names aggregated; so a page costs the same whatever the collections hold.
    Needs ``CollectionUsage`` outer-joined on the collection."""
    owners = (
        select(func.aggregate_strings(User.name, OWNER_SEPARATOR))
        .join_from(CollectionMember, User, User.id == CollectionMember.user_id)
        .where(CollectionMember.collection_id == Collection.id, CollectionMember.role == Role.OWNER.value)
        .scalar_subquery()
    )
    return [
        Collection.id,
        Collection.name,
        Collection.description,
        Collection.private,
        Collection.created_at,
        Collection.updated_at,
        func.coalesce(CollectionUsage.containers, 0).label("containers"),
        func.coalesce(CollectionUsage.images, 0).label("images"),
        SIZE.label("size"),
        STARS.label("stars"),
        owners.label("owners"),
    ]


OWNER_SEPARATOR = " "  # user names never hold a space (``names.USERNAME_RE``)
SIZE = cast(func.coalesce(CollectionUsage.size, 0), BigInteger)
STARS = func.coalesce(CollectionUsage.stars, 0)
# Built once: a statement is immutable (``where`` and ``order_by`` return new ones), and building one costs
# more than running it for a page of collections.
SUMMARY_QUERY = select(*_figures()).outerjoin(CollectionUsage, CollectionUsage.collection_id == Collection.id)
SUMMARY_ORDERS = {"size": SIZE, "stars": STARS}


def names_with_role(session: Session, ids: list[int], role: Role = Role.OWNER) -> dict[int, list[str]]:
    """The names of the users with ``role`` in each of the collections ``ids``, in one query."""
    names: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        rows = session.execute(
            select(CollectionMember.collection_id, User.name)
            .join(User)
            .where(CollectionMember.collection_id.in_(ids), CollectionMember.role == role.value)
            .order_by(User.name)
        )
        for collection_id, user_name in rows:
            names[collection_id].append(user_name)
    return names


def _summary(row: Row[Any]) -> CollectionSummary:
    owners = sorted(row.owners.split(OWNER_SEPARATOR)) if row.owners else []
    return CollectionSummary(row, row.containers, row.images, row.size, row.stars, owners)


def _summaries(session: Session, query: Select) -> list[CollectionSummary]:
    return [_summary(row) for row in session.execute(query)]


def _order(sort: str) -> tuple[ColumnElement, ...]:
    if sort in SORTS:
        return SORTS[sort], Collection.id
    figure = SUMMARY_ORDERS[SUMMARY_SORTS[sort]]
    return figure.desc() if sort.startswith("-") else figure.asc(), Collection.id


@functools.cache
def _where(visibility: Visibility, searching: bool) -> tuple[ColumnElement[bool], ...]:
    """What a listing selects: the collections a viewer of this kind may see, matching ``:pattern`` if searching."""
    where = [visible_collections_where(visibility)]
    if searching:
        pattern = bindparam("pattern")
        in_containers = select(Container.collection_id).where(Container.name.like(pattern, escape="\\"))
        where.append(
            or_(
                Collection.name.like(pattern, escape="\\"),
                func.lower(Collection.description).like(pattern, escape="\\"),
                Collection.id.in_(in_containers),
            )
        )
    return tuple(where)


@functools.cache
def _page_query(visibility: Visibility, sort: str, searching: bool) -> Select:
    """One page of collections with their figures and the number of matches in all, as one statement (built
    once for each kind of viewer, order and search): the page's ids (and the total, by a window over the
    matches) are chosen from indexes first, and only those rows' figures are computed."""
    order = _order(sort)
    page = select(
        Collection.id.label("id"),
        func.count().over().label("total"),
        func.row_number().over(order_by=order).label("position"),
    ).where(*_where(visibility, searching))
    if sort in SUMMARY_SORTS:
        page = page.outerjoin(CollectionUsage, CollectionUsage.collection_id == Collection.id)
    page = page.order_by(*order).limit(bindparam("limit")).offset(bindparam("offset")).subquery("page")
    return (
        select(*_figures(), page.c.total)
        .join_from(page, Collection, Collection.id == page.c.id)
        .outerjoin(CollectionUsage, CollectionUsage.collection_id == Collection.id)
        .order_by(page.c.position)
    )


@functools.cache
def _count_query(visibility: Visibility, searching: bool) -> Select:
    return select(func.count(Collection.id)).where(*_where(visibility, searching))


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
    if sort not in SORTS and sort not in SUMMARY_SORTS:
        raise InvalidInput(f"invalid sort {sort!r}: use one of {', '.join([*SORTS, *SUMMARY_SORTS])}")
    visibility = visibility_of(principal)
    params: dict[str, Any] = {"limit": limit, "offset": offset, **visibility_params(principal)}
    if query:
        params["pattern"] = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    session.flush()  # the statements below go to the connection, past the session's autoflush
    connection = session.connection()
    rows = connection.execute(_page_query(visibility, sort, bool(query)), params).all()
    if rows:
        return [_summary(row) for row in rows], rows[0].total
    if offset == 0:
        return [], 0
    # Past the last page, the window had no rows to count the matches on: count them on their own.
    return [], connection.execute(_count_query(visibility, bool(query)), params).scalar() or 0


def summarise(session: Session, collection: Collection) -> CollectionSummary:
    (summary,) = _summaries(session, SUMMARY_QUERY.where(Collection.id == collection.id))
    return summary


def summaries_where(session: Session, *where: ColumnElement[bool]) -> list[CollectionSummary]:
    """The summaries of the collections matching ``where``, by name."""
    return _summaries(session, SUMMARY_QUERY.where(*where).order_by(Collection.name))


def summarise_all(session: Session) -> list[CollectionSummary]:
    """Every collection's summary, by name, whoever may see it (for staff tools)."""
    return _summaries(session, SUMMARY_QUERY.order_by(Collection.name))


def list_containers(session: Session, collection: Collection) -> list[Container]:
    """A collection's containers by name, with their tags (and those tags' images) loaded in two queries."""
    return list(
        session.scalars(
            select(Container)
            .where(Container.collection_id == collection.id)
            .order_by(Container.name)
            .options(selectinload(Container.tags).joinedload(Tag.image))
        )
    )


def get_container(session: Session, collection: Collection, name: str) -> Container:
    validate_name(name, "container name")
    container = session.scalar(
        select(Container)
        .where(Container.collection_id == collection.id, Container.name == name)
        .options(selectinload(Container.tags).joinedload(Tag.image))
    )
    if container is None:
        raise NotFound(f"no container {collection.name}/{name}")
    return container


@dataclass(frozen=True)
class ContainerView:
    """What a container's page of the API shows, as plain rows: the container, its tags (with their images'
    digests) and its uploaded images, newest first."""

    collection: str
    container: Row[Any]
    tags: list[Row[Any]]
    images: list[Row[Any]]


# The collection, the viewer's role in it and the container, in one statement; a missing container leaves its
# columns NULL, so that "no such collection" (or one the viewer may not see) and "no such container" differ.
CONTAINER_LOOKUP = (
    select(
        Collection.id,
        Collection.name,
        Collection.private,
        select(CollectionMember.role)
        .where(CollectionMember.collection_id == Collection.id, CollectionMember.user_id == bindparam("viewer_id"))
        .scalar_subquery()
        .label("role"),
        Container.id.label("container_id"),
        Container.name.label("container_name"),
        Container.description,
        Container.created_at,
        Container.updated_at,
    )
    .outerjoin(Container, (Container.collection_id == Collection.id) & (Container.name == bindparam("container")))
    .where(Collection.name == bindparam("collection"))
)
CONTAINER_TAGS = (
    select(Tag.name, Tag.arch, Tag.frozen, Tag.updated_at, Tag.image_id, Image.digest)
    .join(Image, Image.id == Tag.image_id)
    .where(Tag.container_id == bindparam("container_id"))
)
CONTAINER_IMAGES = (
    select(
        Image.id,
        Image.digest,
        Image.size,
        Image.arch,
        Image.description,
        Image.signed,
        Image.downloads,
        Image.uploaded_at,
        Image.sif,
    )
    .where(Image.container_id == bindparam("container_id"), Image.uploaded.is_(True))
    .order_by(Image.uploaded_at.desc(), Image.id.desc())
)


def view_container(session: Session, principal: Principal, collection_name: str, name: str) -> ContainerView:
    """A container ``principal`` may see, read column by column in three indexed statements built once (the
    hot read of the API: no ORM objects are made)."""
    require(principal, Action.SEE)
    validate_name(collection_name, "collection name")
    validate_name(name, "container name")
    connection = session.connection()
    viewer = principal.user.id if principal.user is not None else None
    found = connection.execute(
        CONTAINER_LOOKUP, {"viewer_id": viewer, "container": name, "collection": collection_name}
    ).first()
    role = Role(found.role) if found is not None and found.role else None
    if found is None or not decide(principal, Action.SEE, found, role):
        raise NotFound(f"no collection {collection_name!r}")
    if found.container_id is None:
        raise NotFound(f"no container {collection_name}/{name}")
    params = {"container_id": found.container_id}
    tags = sorted(connection.execute(CONTAINER_TAGS, params), key=lambda t: (t.name, t.arch))
    images = connection.execute(CONTAINER_IMAGES, params).all()
    return ContainerView(found.name, found, tags, images)


def delete_container(session: Session, principal: Principal, collection_name: str, name: str) -> None:
    collection = get_visible(session, principal, collection_name, Action.DELETE_IMAGE)
    container = get_container(session, collection, name)
    if any(tag.frozen for tag in container.tags):
        raise Conflict(f"{collection_name}/{name} has frozen tags; unfreeze them first")
    session.delete(container)
    collection.updated_at = utcnow()
    audit.record(session, "container.delete", principal, collection=collection_name, container=name)
