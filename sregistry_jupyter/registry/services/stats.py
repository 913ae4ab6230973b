"""Figures for visualisation: sizes and counts per collection, pushes and pulls over time.

Every figure is aggregated in SQL. A collection's images and bytes come from ``collection_usage`` (kept by
triggers, migration 0005), its containers from a count grouped by collection; the totals sum those over
every visible collection. What is listed per row is capped: the first ``COLLECTIONS_LIMIT`` collections
and the first ``CONTAINERS_LIMIT`` containers by name (the order the lists always had), each container's
figures summed from its own images only, so an answer costs the same few statements at any size.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from ..access import Principal, visible_collections
from ..orm import Collection, CollectionUsage, Container, Event, Image, Tag, utcnow

MAX_DAYS = 366
COLLECTIONS_LIMIT = 1000
CONTAINERS_LIMIT = 1000


def registry_stats(session: Session, principal: Principal, days: int = 30) -> dict[str, Any]:
    """Sizes and counts, and daily push/pull counts, over what ``principal`` may see; per-collection and
    per-container rows capped (the totals are not)."""
    visible = visible_collections(principal)
    counted = (
        select(Container.collection_id, func.count(Container.id).label("containers"))
        .group_by(Container.collection_id)
        .subquery()
    )
    usage = (
        select(
            Collection.name,
            Collection.private,
            func.coalesce(counted.c.containers, 0).label("containers"),
            func.coalesce(CollectionUsage.images, 0).label("images"),
            func.coalesce(CollectionUsage.size, 0).label("size"),
        )
        .select_from(Collection)
        .outerjoin(counted, counted.c.collection_id == Collection.id)
        .outerjoin(CollectionUsage, CollectionUsage.collection_id == Collection.id)
        .where(visible)
        .subquery()
    )
    collections, containers, images, size = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(usage.c.containers), 0),
            func.coalesce(func.sum(usage.c.images), 0),
            func.coalesce(func.sum(usage.c.size), 0),
        ).select_from(usage)
    ).one()
    per_collection = session.execute(select(usage).order_by(usage.c.name).limit(COLLECTIONS_LIMIT)).all()
    listed = (
        select(Container.id, Collection.name.label("collection"), Container.name)
        .join(Container.collection)
        .where(visible)
        .order_by(Collection.name, Container.name)
        .limit(CONTAINERS_LIMIT)
        .subquery()
    )
    per_container = session.execute(
        select(
            listed.c.collection,
            listed.c.name,
            func.count(Image.id),
            func.coalesce(func.sum(Image.size), 0),
            func.coalesce(func.sum(Image.downloads), 0),
        )
        .select_from(listed)
        .outerjoin(Image, (Image.container_id == listed.c.id) & Image.uploaded.is_(True))
        .group_by(listed.c.id, listed.c.collection, listed.c.name)
        .order_by(listed.c.collection, listed.c.name)
    ).all()
    tags = session.scalar(select(func.count(Tag.id)).join(Container).join(Collection).where(visible)) or 0
    since = (utcnow() - dt.timedelta(days=days - 1)).date()
    day = func.date(Event.at)
    activity_rows = (
        session.execute(
            select(day, Event.action, func.count(Event.id))
            .where(
                Event.action.in_(("push", "pull")),
                Event.at >= dt.datetime.combine(since, dt.time()),
                Event.collection.in_(select(Collection.name).where(visible)),
            )
            .group_by(day, Event.action)
        ).all()
        if collections
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
            "collections": collections,
            "containers": int(containers),
            "images": int(images),
            "tags": tags,
            "size": int(size),
        },
        "collections": [
            {"name": n, "private": p, "containers": c, "images": i, "size": int(s)} for n, p, c, i, s in per_collection
        ],
        "containers": [
            {"collection": c, "name": n, "images": i, "size": int(s), "downloads": int(d)}
            for c, n, i, s, d in per_container
        ],
        "activity": activity,
    }


def container_usage(session: Session, principal: Principal, stats: dict[str, Any]) -> list[dict[str, Any]]:
    """``stats``' containers, each with when it last changed (``updated``), as the treemap coloured by age
    needs them; the same shape the client's ``container_usage`` gives the notebook widgets."""
    pairs = [(row["collection"], row["name"]) for row in stats["containers"]]
    changed = (
        {
            (collection, name): updated
            for collection, name, updated in session.execute(
                select(Collection.name, Container.name, Container.updated_at)
                .join(Container, Container.collection_id == Collection.id)
                .where(visible_collections(principal), tuple_(Collection.name, Container.name).in_(pairs))
            )
        }
        if pairs
        else {}
    )
    return [{**row, "updated": changed.get((row["collection"], row["name"]))} for row in stats["containers"]]
