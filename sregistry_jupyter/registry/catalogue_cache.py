"""The answers of the catalogue's hot reads, remembered while nothing in the catalogue has changed.

Listing collections and reading a container are most of what clients and pages ask, and most asks repeat one
made a moment ago. Each process keeps the JSON it answered, per request and per kind of caller (the same
person with the same scope and credential kind sees the same answer), for as long as the catalogue generation
says nothing it was built from can have changed (``generation_cache`` has the rule). Database triggers
(migration 0009) bump the generation in the same transaction as any change to the catalogue's tables: users,
collections and their usage, members and stars, containers, images, labels and tags, teams and their members.
So an answer is never older than its process's last write, and never more than one bookkeeping interval older
than another process's. A caller that must see another process's change at once sends
``Cache-Control: no-cache``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Hashable
from typing import Any, Concatenate, ParamSpec

from pydantic import BaseModel
from sqlalchemy.orm import Session

from .access import Principal
from .generation_cache import GenerationCache
from .orm import (
    Collection,
    CollectionMember,
    CollectionUsage,
    Container,
    Image,
    ImageLabel,
    Star,
    Tag,
    Team,
    TeamMember,
    User,
)

P = ParamSpec("P")
CATALOGUE = "catalogue"
WATCHED = (
    User,
    Collection,
    CollectionUsage,
    CollectionMember,
    Container,
    Image,
    ImageLabel,
    Tag,
    Star,
    Team,
    TeamMember,
)
DEFAULT_CAPACITY = 64 << 20  # bytes of JSON
LARGEST = 1 << 20  # bytes: a larger answer is read each time


def catalogue_cache(max_age: float, capacity: int = DEFAULT_CAPACITY) -> GenerationCache:
    """An empty cache of at most ``capacity`` bytes of answers, each used while the generation was confirmed
    within ``max_age`` seconds."""
    return GenerationCache(CATALOGUE, WATCHED, max_age=max_age, capacity=capacity, weigh=len, largest=LARGEST)


def read_answer(
    session: Session,
    cache: GenerationCache,
    work: Callable[Concatenate[Session, Principal, P], Any],
    principal: Principal,
    *args: P.args,
    **kwargs: P.kwargs,
) -> tuple[int, bytes]:
    """``work``'s answer as JSON, with the generation read before it (so the answer is at least that new)."""
    generation = cache.read_generation(session)
    return generation, encoded(work(session, principal, *args, **kwargs))


def encoded(answer: Any) -> bytes:
    """A model by its own serialiser, any other JSON value with ``str`` for what JSON cannot hold (dates)."""
    if isinstance(answer, BaseModel):
        return answer.model_dump_json().encode()
    return json.dumps(answer, default=str).encode()


class ReadsInFlight:
    """The catalogue reads running now, by key, so that requests that miss together make one read.

    A popular answer, dropped by a change, would otherwise be read again by every request that arrives
    before the first read ends (at -c10 on a search, ten reads queued behind each other). A request joins a
    read only if no newer generation has been seen since that read began: one that follows a change made
    here never receives an answer read before the change. Loop-thread only.
    """

    def __init__(self) -> None:
        self._reads: dict[Hashable, tuple[int, asyncio.Future[bytes]]] = {}

    def joinable(self, key: Hashable, generation: int | None) -> asyncio.Future[bytes] | None:
        """The read of ``key`` that began at ``generation``, if one is running."""
        running = self._reads.get(key)
        if running is None or generation is None or running[0] != generation:
            return None
        return running[1]

    def begin(self, key: Hashable, generation: int | None) -> asyncio.Future[bytes] | None:
        """A future for others to join while this request reads ``key``; None if it cannot be shared."""
        if generation is None or key in self._reads:
            return None
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._reads[key] = (generation, future)
        return future

    def end(self, key: Hashable, future: asyncio.Future[bytes], body: bytes | None) -> None:
        """The read is over: its joiners get ``body``, or read for themselves if it failed (None)."""
        if self._reads.get(key, (None, None))[1] is future:
            del self._reads[key]
        if body is None:
            future.cancel()
        else:
            future.set_result(body)
