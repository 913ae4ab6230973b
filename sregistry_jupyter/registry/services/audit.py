"""The audit trail of pushes, pulls, deletes and administrative actions.

Each event is also logged once its transaction commits (never for one rolled back): sign-ins, pushes,
deletes, token and team changes, GC runs at INFO; pulls at DEBUG, since the access log has them already.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ..access import Principal, StaffAction, decide_staff, staff_refusal
from ..errors import Forbidden, InvalidInput
from ..orm import Event

log = logging.getLogger("sregistry_jupyter")
PENDING = "sregistry_jupyter.audit"
QUIET_ACTIONS = frozenset({"pull"})


def record(
    session: Session,
    action: str,
    principal: Principal | None,
    *,
    collection: str | None = None,
    container: str | None = None,
    tag: str | None = None,
    digest: str | None = None,
    size: int | None = None,
    remote_addr: str | None = None,
    detail: dict[str, Any] | None = None,
) -> Event:
    user = principal.user if principal else None
    event = Event(
        action=action,
        user_id=user.id if user else None,
        username=user.name if user else None,
        collection=collection,
        container=container,
        tag=tag,
        digest=digest,
        size=size,
        remote_addr=remote_addr,
        detail=detail,
    )
    session.add(event)
    session.info.setdefault(PENDING, []).append(describe(event))
    return event


def describe(event: Event) -> tuple[str, str, str | None]:
    """The event's action, a one-line account of it, and its user."""
    where = "/".join(part for part in (event.collection, event.container) if part)
    if where and event.tag:
        where += f":{event.tag}"
    parts = [
        event.action,
        f"by {event.username}" if event.username else "",
        where,
        event.digest or "",
        f"from {event.remote_addr}" if event.remote_addr else "",
        " ".join(f"{key}={value}" for key, value in (event.detail or {}).items()),
    ]
    return event.action, " ".join(part for part in parts if part), event.username


@sa_event.listens_for(Session, "after_commit")
def _log_committed(session: Session) -> None:
    for action, line, user in session.info.pop(PENDING, ()):
        level = logging.DEBUG if action in QUIET_ACTIONS else logging.INFO
        log.log(level, "%s", line, extra={"event": action, "user": user})


@sa_event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(PENDING, None)


# What the audit page filters by: a kind of event stands for the actions recorded under it.
# A name ending in a dot stands for every action it begins.
KINDS: dict[str, tuple[str, ...]] = {
    "push": ("push", "tag"),
    "pull": ("pull",),
    "delete": ("delete", "untag", "collection.delete", "container.delete"),
    "collection": ("collection.create", "collection.update", "freeze", "unfreeze", "member.", "share."),
    "team": ("team.",),
    "account": ("user.", "token."),
    "admin": ("admin.", "staff.", "gc"),
}
MAX_FILTER = 128


@dataclass(frozen=True)
class EventFilter:
    """Which events a staff member asked for; empty fields match everything."""

    user: str = ""
    collection: str = ""
    kind: str = ""

    def __post_init__(self) -> None:
        if self.kind and self.kind not in KINDS:
            raise InvalidInput(f"an event kind is one of {', '.join(KINDS)}, not {self.kind!r}")
        if len(self.user) > MAX_FILTER or len(self.collection) > MAX_FILTER:
            raise InvalidInput(f"a filter is at most {MAX_FILTER} characters")


def _kind_clause(kind: str) -> Any:
    exact = [name for name in KINDS[kind] if not name.endswith(".")]
    prefixes = [name for name in KINDS[kind] if name.endswith(".")]
    return or_(Event.action.in_(exact), *(Event.action.startswith(prefix, autoescape=True) for prefix in prefixes))


def list_events(
    session: Session, principal: Principal, wanted: EventFilter, *, offset: int = 0, limit: int = 50
) -> tuple[list[Event], int]:
    """One page of the audit trail, newest first, and how many events match in all (staff only)."""
    if not decide_staff(principal, StaffAction.AUDIT):
        raise Forbidden(staff_refusal(principal, StaffAction.AUDIT))
    where = []
    if wanted.user:
        where.append(Event.username == wanted.user)
    if wanted.collection:
        where.append(Event.collection == wanted.collection)
    if wanted.kind:
        where.append(_kind_clause(wanted.kind))
    total = session.scalar(select(func.count(Event.id)).where(*where)) or 0
    rows = session.scalars(select(Event).where(*where).order_by(Event.id.desc()).offset(offset).limit(limit))
    return list(rows), total
