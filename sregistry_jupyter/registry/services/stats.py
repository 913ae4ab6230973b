"""Figures for visualisation: sizes and counts per collection, pushes and pulls over time."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..access import Principal, visible_collections
from ..orm import Collection, Container, Event, Image, Tag, utcnow

MAX_DAYS = 366


def registry_stats(session: Session, principal: Principal, days: int = 30) -> dict[str, Any]:
    """Per-collection sizes and counts, and daily push/pull counts, over what ``principal`` may see."""
    visible = visible_collections(principal)
    per_collection = session.execute(
        select(
            Collection.name,
            Collection.private,
            func.count(func.distinct(Container.id)),
            func.count(func.distinct(Image.id)),
            func.coalesce(func.sum(Image.size), 0),
        )
        .select_from(Collection)
        .outerjoin(Container, Container.collection_id == Collection.id)
        .outerjoin(Image, (Image.container_id == Container.id) & Image.uploaded.is_(True))
        .where(visible)
        .group_by(Collection.id, Collection.name, Collection.private)
        .order_by(Collection.name)
    ).all()
    containers = session.execute(
        select(
            Collection.name,
            Container.name,
            func.count(Image.id),
            func.coalesce(func.sum(Image.size), 0),
            func.coalesce(func.sum(Image.downloads), 0),
        )
        .join(Container, Container.collection_id == Collection.id)
        .outerjoin(Image, (Image.container_id == Container.id) & Image.uploaded.is_(True))
        .where(visible)
        .group_by(Collection.name, Container.id, Container.name)
        .order_by(Collection.name, Container.name)
    ).all()
    tags = session.scalar(select(func.count(Tag.id)).join(Container).join(Collection).where(visible)) or 0
    since = (utcnow() - dt.timedelta(days=days - 1)).date()
    names = [row[0] for row in per_collection]
    day = func.date(Event.at)
    activity_rows = (
        session.execute(
            select(day, Event.action, func.count(Event.id))
            .where(
                Event.action.in_(("push", "pull")),
                Event.at >= dt.datetime.combine(since, dt.time()),
                Event.collection.in_(names),
            )
            .group_by(day, Event.action)
        ).all()
        if names
        else []
    )
    counts: dict[str, dict[str, int]] = {}
    for when, action, count in activity_rows:
        counts.setdefault(str(when)[:10], {})[action] = count
    activity = []
    for offset in range(days):
        key = (since + dt.timedelta(days=offset)).isoformat()
        activity.append(
            {"date": key, "pushes": counts.get(key, {}).get("push", 0), "pulls": counts.get(key, {}).get("pull", 0)}
        )
    return {
        "totals": {
            "collections": len(per_collection),
            "containers": sum(row[2] for row in per_collection),
            "images": sum(row[3] for row in per_collection),
            "tags": tags,
            "size": sum(int(row[4]) for row in per_collection),
        },
        "collections": [
            {"name": n, "private": p, "containers": c, "images": i, "size": int(s)} for n, p, c, i, s in per_collection
        ],
        "containers": [
            {"collection": c, "name": n, "images": i, "size": int(s), "downloads": int(d)}
            for c, n, i, s, d in containers
        ],
        "activity": activity,
    }


def container_usage(session: Session, principal: Principal, stats: dict[str, Any]) -> list[dict[str, Any]]:
    """``stats``' containers, each with when it last changed (``updated``), as the treemap coloured by age
    needs them; the same shape the client's ``container_usage`` gives the notebook widgets."""
    changed = {
        (collection, name): updated
        for collection, name, updated in session.execute(
            select(Collection.name, Container.name, Container.updated_at)
            .join(Container, Container.collection_id == Collection.id)
            .where(visible_collections(principal))
        )
    }
    return [{**row, "updated": changed.get((row["collection"], row["name"]))} for row in stats["containers"]]
