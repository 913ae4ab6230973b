"""Typed answers of the native API, as the client hands them to its callers.

Models accept fields they do not know (``extra="allow"``), so a newer registry that adds one does not
break an older client; every field the client reads is declared.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Result(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class User(Result):
    name: str
    admin: bool = False
    staff: bool = False
    robot: bool = False
    created: dt.datetime | None = None


class Collection(Result):
    name: str
    description: str = ""
    private: bool = False
    owners: list[str] = Field(default_factory=list)
    containers: int = 0
    images: int = 0
    size: int = 0
    stars: int = 0
    created: dt.datetime | None = None
    updated: dt.datetime | None = None


class Tag(Result):
    name: str
    arch: str
    digest: str
    frozen: bool = False
    updated: dt.datetime | None = None


class Container(Result):
    collection: str
    name: str
    description: str = ""
    tags: list[Tag] = Field(default_factory=list)
    created: dt.datetime | None = None
    updated: dt.datetime | None = None
    images: list[Image] | None = None


class CollectionDetail(Collection):
    containers_list: list[Container] = Field(default_factory=list)


class Partition(Result):
    id: int | None = None
    name: str = ""
    fstype: str = ""
    parttype: str = ""
    primary: bool = False
    arch: str = ""
    size: int = 0


class SifInfo(Result):
    partitions: list[Partition] = Field(default_factory=list)
    deffile: str | None = None
    labels: dict[str, Any] | None = None


class Image(Result):
    collection: str
    container: str
    digest: str
    size: int
    arch: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    signed: bool = False
    downloads: int = 0
    uploaded: dt.datetime | None = None
    sif: SifInfo | None = None


class Page(Result):
    """One page of a paginated list; ``items`` are parsed by the caller's model."""

    items: list[Any]
    page: int
    per_page: int
    total: int
    pages: int


class Member(Result):
    user: str
    role: str


class Team(Result):
    name: str
    description: str = ""
    open: bool = False
    owners: list[str] = Field(default_factory=list)
    members: list[Member] = Field(default_factory=list)
    your_role: str | None = None


class ShareLink(Result):
    id: int
    url: str
    expires: dt.datetime
    digest: str
    token: str | None = None


class CollectionUsage(Result):
    name: str
    private: bool = False
    containers: int = 0
    images: int = 0
    size: int = 0


class ContainerUsage(Result):
    collection: str
    name: str
    images: int = 0
    size: int = 0
    downloads: int = 0


class DayActivity(Result):
    date: dt.date
    pushes: int = 0
    pulls: int = 0


class Totals(Result):
    collections: int = 0
    containers: int = 0
    images: int = 0
    tags: int = 0
    size: int = 0


class Stats(Result):
    totals: Totals
    collections: list[CollectionUsage] = Field(default_factory=list)
    containers: list[ContainerUsage] = Field(default_factory=list)
    activity: list[DayActivity] = Field(default_factory=list)


Container.model_rebuild()
