"""The permission policy: every decision about who may do what goes through this module.

Handlers and services never compare roles themselves. ``decide`` is a pure function of the principal,
the action, the collection and the principal's role in it, so the whole policy can be read (and tested
as a table) in one place. A token's scope caps what the user behind it may do: a read token can never
push, whatever the user's role.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.orm import Session

from .orm import Collection, CollectionMember, User


class Action(enum.StrEnum):
    SEE = "see"
    PULL = "pull"
    CREATE_COLLECTION = "create_collection"
    PUSH = "push"
    TAG = "tag"
    UPDATE = "update"
    DELETE_IMAGE = "delete_image"
    DELETE_COLLECTION = "delete_collection"
    MANAGE_MEMBERS = "manage_members"
    CHANGE_PRIVACY = "change_privacy"
    FREEZE = "freeze"
    ADMIN = "admin"


class Role(enum.StrEnum):
    OWNER = "owner"
    CONTRIBUTOR = "contributor"


SCOPE_ALLOWS: dict[str, frozenset[Action]] = {
    "read": frozenset({Action.SEE, Action.PULL}),
    "write": frozenset(
        {Action.SEE, Action.PULL, Action.CREATE_COLLECTION, Action.PUSH, Action.TAG, Action.UPDATE, Action.DELETE_IMAGE}
    ),
    "admin": frozenset(Action),
}

OWNER_ACTIONS = frozenset(Action) - {Action.ADMIN, Action.CREATE_COLLECTION}
CONTRIBUTOR_ACTIONS = frozenset({Action.SEE, Action.PULL})
PUBLIC_ACTIONS = frozenset({Action.SEE, Action.PULL})


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user (or nobody) and the scope of the credential they presented."""

    user: User | None = None
    scope: str = "admin"
    token_id: int | None = None

    @property
    def authenticated(self) -> bool:
        return self.user is not None

    @property
    def name(self) -> str | None:
        return self.user.name if self.user else None


ANONYMOUS = Principal(None, "read")


def decide(principal: Principal, action: Action, collection: Collection | None, role: Role | None) -> bool:
    """True if ``principal`` (whose role in ``collection`` is ``role``) may perform ``action``."""
    if action not in SCOPE_ALLOWS.get(principal.scope, frozenset()):
        return False
    user = principal.user
    if user is not None and user.is_admin:
        return True
    if action is Action.ADMIN:
        return False
    if action is Action.CREATE_COLLECTION:
        return user is not None
    if collection is None:
        return False
    if user is not None and user.is_staff:
        return True
    if role is Role.OWNER:
        return action in OWNER_ACTIONS
    if role is Role.CONTRIBUTOR and action in CONTRIBUTOR_ACTIONS:
        return True
    return not collection.private and action in PUBLIC_ACTIONS


def role_of(session: Session, user: User | None, collection: Collection) -> Role | None:
    if user is None:
        return None
    role = session.scalar(
        select(CollectionMember.role).where(
            CollectionMember.collection_id == collection.id, CollectionMember.user_id == user.id
        )
    )
    return Role(role) if role else None


def can(session: Session, principal: Principal, action: Action, collection: Collection | None = None) -> bool:
    role = role_of(session, principal.user, collection) if collection is not None else None
    return decide(principal, action, collection, role)


def visible_collections(principal: Principal) -> ColumnElement[bool]:
    """A WHERE clause selecting exactly the collections ``principal`` may see (for lists and search)."""
    user = principal.user
    if user is not None and (user.is_admin or user.is_staff):
        return true()
    if user is None:
        return Collection.private == false()
    member = select(CollectionMember.collection_id).where(CollectionMember.user_id == user.id)
    return or_(Collection.private == false(), Collection.id.in_(member))
