"""Collections (the namespace) and the containers inside them.

Collection names are global, so a name someone else holds cannot be had, whether their collection is public
or private. Whoever would create a collection under such a name, or push into one in which they have no role,
hears only that the name is taken (``name_taken``): the same status and words for a private collection as
for a public one, and nothing about what is in it. Refusals that no collection could lift (no identity,
too weak a token scope) are given before anything is looked up (``require``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, ColumnElement, Select, cast, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from ..access import (
    Action,
    Principal,
    Role,
    can,
    decide,
    missing_identity,
    refusal,
    role_of,
    scope_refusal,
    see_and_can,
    visible_collections,
)
from ..errors import Conflict, CredentialRequired, Forbidden, InvalidInput, NotFound
from ..names import validate_name
from ..orm import Collection, CollectionMember, CollectionUsage, Container, Star, Tag, User, utcnow
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


def _summary_query() -> Select:
    """Collections with their figures: containers and stars counted by index, images and size read from
    ``CollectionUsage`` (kept by triggers), so a page costs the same whatever the collections hold."""
    containers = select(func.count(Container.id)).where(Container.collection_id == Collection.id).scalar_subquery()
    stars = select(func.count(Star.id)).where(Star.collection_id == Collection.id).scalar_subquery()
    return select(
        Collection,
        containers,
        func.coalesce(CollectionUsage.images, 0),
        cast(func.coalesce(CollectionUsage.size, 0), BigInteger).label("size"),
        stars.label("stars"),
    ).outerjoin(CollectionUsage, CollectionUsage.collection_id == Collection.id)


# Built once: a statement is immutable (``where`` and ``order_by`` return new ones), and building this one
# costs more than running it for a page of collections.
SUMMARY_QUERY = _summary_query()


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


def _summaries(session: Session, query: Select) -> list[CollectionSummary]:
    rows = session.execute(query).all()
    owners = names_with_role(session, [row[0].id for row in rows])
    return [CollectionSummary(c, n, i, s, st, owners[c.id]) for c, n, i, s, st in rows]


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
    if sort in SORTS:
        order = SORTS[sort]
    else:
        figure = SUMMARY_QUERY.selected_columns[SUMMARY_SORTS[sort]]
        order = figure.desc() if sort.startswith("-") else figure.asc()
    query = SUMMARY_QUERY.where(*where).order_by(order, Collection.id).offset(offset).limit(limit)
    return _summaries(session, query), total


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


def delete_container(session: Session, principal: Principal, collection_name: str, name: str) -> None:
    collection = get_visible(session, principal, collection_name, Action.DELETE_IMAGE)
    container = get_container(session, collection, name)
    if any(tag.frozen for tag in container.tags):
        raise Conflict(f"{collection_name}/{name} has frozen tags; unfreeze them first")
    session.delete(container)
    collection.updated_at = utcnow()
    audit.record(session, "container.delete", principal, collection=collection_name, container=name)
