"""Stars: a user's bookmarks of collections, counted on each collection.

Starring and unstarring are idempotent, so a double click or a retried request changes nothing. A user's
list shows only the starred collections they may still see: a collection made private later drops out
of it, and reappears if they regain access.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..access import Action, Principal, visible_collections
from ..errors import Conflict
from ..orm import Collection, Star
from . import audit
from .collections import get_visible, require_user
from .rows import insert_unique


def star(session: Session, principal: Principal, name: str) -> Collection:
    user = require_user(principal)
    collection = get_visible(session, principal, name, Action.STAR)
    exists = select(Star.id).where(Star.user_id == user.id, Star.collection_id == collection.id)
    if session.scalar(exists) is None:
        try:
            insert_unique(session, Star(user_id=user.id, collection_id=collection.id), "already starred")
        except Conflict:
            return collection
        audit.record(session, "star", principal, collection=collection.name)
    return collection


def unstar(session: Session, principal: Principal, name: str) -> Collection:
    user = require_user(principal)
    collection = get_visible(session, principal, name, Action.STAR)
    removed = session.execute(delete(Star).where(Star.user_id == user.id, Star.collection_id == collection.id))
    if removed.rowcount:
        audit.record(session, "unstar", principal, collection=collection.name)
    return collection


def starred(session: Session, principal: Principal) -> list[Collection]:
    """The collections the caller starred and may see, most recently starred first."""
    user = require_user(principal)
    return list(
        session.scalars(
            select(Collection)
            .join(Star, Star.collection_id == Collection.id)
            .where(Star.user_id == user.id, visible_collections(principal))
            .order_by(Star.created_at.desc(), Star.id.desc())
        )
    )
