"""Inserting rows that a unique constraint may refuse."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import Conflict

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
