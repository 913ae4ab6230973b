"""Statistics for plots and dashboards: sizes and counts, and daily pushes and pulls."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from .base import Answer
from .values import Bytes, Count, Name


class Totals(Answer):
    collections: Count = 0
    containers: Count = 0
    images: Count = 0
    tags: Count = 0
    size: Bytes = 0


class CollectionUsage(Answer):
    name: Name
    private: bool = False
    containers: Count = 0
    images: Count = 0
    size: Bytes = 0


class ContainerUsage(Answer):
    collection: Name
    name: Name
    images: Count = 0
    size: Bytes = 0
    downloads: Count = 0


class DayActivity(Answer):
    date: dt.date
    pushes: Count = 0
    pulls: Count = 0


class Stats(Answer):
    """Sizes and counts over the collections the caller may see, and daily pushes and pulls."""

    totals: Totals
    collections: list[CollectionUsage] = Field(
        default_factory=list, description="The first collections by name, up to a cap (the totals count all)."
    )
    containers: list[ContainerUsage] = Field(
        default_factory=list, description="The first containers by collection and name, up to a cap."
    )
    activity: list[DayActivity] = Field(
        default_factory=list, description="One entry per day, oldest first, ending today (UTC)."
    )
