"""Inserting rows that a unique constraint may refuse, and the roles that collections and teams share."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from ..access import Role
from ..errors import Conflict
from ..orm import User

OWNER = Role.OWNER.value  # TeamRole.OWNER is spelt the same

T = TypeVar("T")


def insert_unique(session: Session, row: T, conflict: str) -> T:
    """Add and flush ``row`` inside a savepoint, so that a duplicate becomes a Conflict (saying ``conflict``)
    while the rest of the caller's transaction stays usable."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise Conflict(conflict) from None
    return row


def holders(session: Session, link: type, parent: InstrumentedAttribute, parent_id: int) -> list[tuple[User, str]]:
    """Each user with a role through ``link`` (whose ``parent`` column is ``parent_id``) and that role,
    owners first, then by name; for the members of a collection or a team."""
    rows = session.execute(select(User, link.role).join(link, link.user_id == User.id).where(parent == parent_id))
    return sorted(((user, role) for user, role in rows), key=lambda pair: (pair[1] != OWNER, pair[0].name))


def is_last_owner(session: Session, owned: type, link: type, parent: InstrumentedAttribute, row: Any) -> bool:
    """True if ``row`` (of ``link``) holds the only owner role of its ``owned`` parent (a collection or a
    team). The parent row is locked first, so that two owners cannot remove each other at once."""
    if row.role != OWNER:
        return False
    parent_id = getattr(row, parent.key)
    session.execute(select(owned.id).where(owned.id == parent_id).with_for_update())
    owners = session.scalar(select(func.count(link.id)).where(parent == parent_id, link.role == OWNER))
    return (owners or 0) <= 1
