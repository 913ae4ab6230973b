"""The audit trail of pushes, pulls, deletes and administrative actions.

Each event is also logged once its transaction commits (never for one rolled back): sign-ins, pushes,
deletes, token and team changes, GC runs at INFO; pulls at DEBUG, since the access log has them already.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from ..access import Principal
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
