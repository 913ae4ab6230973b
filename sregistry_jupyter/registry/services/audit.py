"""The audit trail of pushes, pulls, deletes and administrative actions."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..access import Principal
from ..orm import Event


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
    return event
