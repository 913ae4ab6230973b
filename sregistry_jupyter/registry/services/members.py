"""Roles in collections: owners push and manage, contributors pull (which is what shares a private collection).

Granting a role goes through ``access.may_grant_role``, so an owner can only add people who share one of
their teams, on every surface. A collection always keeps an owner: removing or demoting the last one is
refused, with the collection row locked so that two owners cannot remove each other at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..access import Action, Policy, Principal, Role, may_grant_role
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..names import validate_name, validate_username
from ..orm import Collection, CollectionMember, User
from . import audit
from .collections import get_visible
from .rows import holders, insert_unique, is_last_owner
from .users import get_user


@dataclass(frozen=True)
class Member:
    user: User
    role: Role


def role_value(value: object) -> Role:
    if value not in tuple(Role):
        raise InvalidInput(f"a collection role is one of {', '.join(Role)}")
    return Role(value)


def list_members(session: Session, principal: Principal, collection_name: str) -> list[Member]:
    """Everyone with a role in a collection the caller may see, owners first, then by name."""
    collection = get_visible(session, principal, collection_name)
    return members_of(session, collection)


def members_of(session: Session, collection: Collection) -> list[Member]:
    rows = holders(session, CollectionMember, CollectionMember.collection_id, collection.id)
    return [Member(user, Role(role)) for user, role in rows]


def _find_row(session: Session, collection: Collection, user: User) -> CollectionMember | None:
    return session.scalar(
        select(CollectionMember).where(
            CollectionMember.collection_id == collection.id, CollectionMember.user_id == user.id
        )
    )


def _member_row(session: Session, collection: Collection, user: User) -> CollectionMember:
    row = _find_row(session, collection, user)
    if row is None:
        raise NotFound(f"{user.name} has no role in collection {collection.name!r}")
    return row


def _check_grant(session: Session, principal: Principal, collection: Collection, user: User) -> None:
    if not may_grant_role(session, principal, collection, user):
        raise Forbidden(
            f"you can only give a role to people who share one of your teams; "
            f"{user.name} is in none of yours: invite them into a team first"
        )


def grant(session: Session, collection: Collection, user: User, role: Role) -> CollectionMember:
    """Give ``user`` a role, without asking the policy (callers have done so, or are the admin CLI)."""
    return insert_unique(
        session,
        CollectionMember(collection_id=collection.id, user_id=user.id, role=role.value),
        f"{user.name} already has a role in collection {collection.name!r}; change it instead",
    )


def keep_an_owner(session: Session, collection: Collection, row: CollectionMember) -> None:
    """Refuse to remove or demote the last owner of ``collection``."""
    if is_last_owner(session, Collection, CollectionMember, CollectionMember.collection_id, row):
        raise Conflict(f"collection {collection.name!r} must keep an owner: make someone else an owner first")


def assign(session: Session, collection: Collection, user: User, role: Role) -> bool:
    """Give ``user`` exactly ``role``, adding or changing their membership, without asking the policy (for
    the admin CLI); the last owner is still kept. False if they already had that role."""
    row = _find_row(session, collection, user)
    if row is None:
        grant(session, collection, user, role)
        return True
    if row.role == role.value:
        return False
    keep_an_owner(session, collection, row)
    row.role = role.value
    return True


def revoke(session: Session, collection: Collection, user: User) -> None:
    """Take ``user``'s role away, without asking the policy; the last owner is still kept."""
    row = _member_row(session, collection, user)
    keep_an_owner(session, collection, row)
    session.delete(row)
    session.flush()


def add_member(session: Session, principal: Principal, collection_name: str, username: str, role: Role) -> Member:
    collection = get_visible(session, principal, collection_name, Action.MANAGE_MEMBERS)
    user = get_user(session, validate_username(username))
    _check_grant(session, principal, collection, user)
    grant(session, collection, user, role)
    audit.record(session, "member.add", principal, collection=collection.name, detail={"user": user.name, "role": role})
    return Member(user, role)


def set_role(session: Session, principal: Principal, collection_name: str, username: str, role: Role) -> Member:
    """Change a member's role; setting a role is granting it, so the team rule applies here too."""
    collection = get_visible(session, principal, collection_name, Action.MANAGE_MEMBERS)
    user = get_user(session, validate_username(username))
    row = _member_row(session, collection, user)
    _check_grant(session, principal, collection, user)
    if role is not Role.OWNER:
        keep_an_owner(session, collection, row)
    row.role = role.value
    audit.record(
        session, "member.set-role", principal, collection=collection.name, detail={"user": user.name, "role": role}
    )
    return Member(user, role)


def remove_member(session: Session, principal: Principal, collection_name: str, username: str) -> None:
    collection = get_visible(session, principal, collection_name, Action.MANAGE_MEMBERS)
    user = get_user(session, validate_username(username))
    revoke(session, collection, user)
    audit.record(session, "member.remove", principal, collection=collection.name, detail={"user": user.name})


def create_owned_collection(
    session: Session, name: str, owner: User, *, private: bool | None, policy: Policy
) -> Collection:
    """A collection owned by ``owner``, made by staff outside the policy on who may create collections;
    its privacy still follows the registry's rules (``private_only``, ``private_by_default``)."""
    validate_name(name, "collection name")
    collection = insert_unique(
        session, Collection(name=name, private=policy.default_privacy(private)), f"collection {name!r} already exists"
    )
    grant(session, collection, owner, Role.OWNER)
    return collection
