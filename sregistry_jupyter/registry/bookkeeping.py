"""Write-behind for what every request would otherwise write: limit counters, token use, pulls.

A read (a pull, a listing, a token check) must not write to the database each time: on SQLite that is
a write lock per request, and when the disk is full or another process holds the lock the read would
fail or wait for bookkeeping nobody asked for. So requests note these facts in memory and a background
task flushes them every ``interval`` seconds in one transaction: counter increments as
``count = count + n`` (so every process's increments add up), the newest last-use time of each token,
the number of pulls of each image (and of each share link), and the pull events of the audit trail.

Counters stay shared: a flush returns the total across all processes of each counter this process is
counting in (including those it had nothing to add to this time), which it then counts on from, so a
limit is enforced across processes to within one flush interval of requests.
A flush that fails (a full disk, a locked database) keeps what it could not write and tries again at
the next interval, up to ``max_pending`` pull events, beyond which the oldest are dropped with a
warning rather than growing without bound: serving pulls matters more than counting them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .database import Database
from .orm import ApiToken, Counter, Event, Image, Share, utcnow
from .services import audit

log = logging.getLogger("sregistry_jupyter")

FLUSH_INTERVAL = 1.0
PRUNE_EVERY = 300.0
MAX_PENDING_EVENTS = 100_000
REFRESH_BATCH = 500

CounterKey = tuple[str, int]


@dataclass
class Pending:
    """What has been noted since the last flush."""

    counters: Tally[CounterKey] = field(default_factory=Tally)
    token_uses: dict[int, dt.datetime] = field(default_factory=dict)
    pulls: Tally[int] = field(default_factory=Tally)
    share_downloads: Tally[int] = field(default_factory=Tally)
    events: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.counters or self.token_uses or self.pulls or self.share_downloads or self.events)

    def absorb(self, older: Pending, max_events: int) -> int:
        """Put back what a failed flush could not write; returns how many events had to be dropped."""
        self.counters.update(older.counters)
        for token_id, when in older.token_uses.items():
            self.token_uses[token_id] = max(when, self.token_uses.get(token_id, when))
        self.pulls.update(older.pulls)
        self.share_downloads.update(older.share_downloads)
        self.events[:0] = older.events
        dropped = max(0, len(self.events) - max_events)
        del self.events[:dropped]
        return dropped


def upsert_counter(session: Session, key: str, window: int, amount: int) -> int:
    """Add ``amount`` to a counter and return its new total (one atomic statement on either engine)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(Counter)
        .values(key=key, window=window, count=amount)
        .on_conflict_do_update(
            index_elements=[Counter.key, Counter.window], set_={"count": Counter.count + amount}
        )
        .returning(Counter.count)
    )
    return session.execute(statement).scalar_one()


def current_totals(session: Session, keys: list[CounterKey]) -> dict[CounterKey, int]:
    """The totals of counters this process follows but had nothing to add to (others may have)."""
    totals: dict[CounterKey, int] = {}
    for start in range(0, len(keys), REFRESH_BATCH):
        batch = keys[start : start + REFRESH_BATCH]
        rows = session.execute(
            select(Counter.key, Counter.window, Counter.count).where(tuple_(Counter.key, Counter.window).in_(batch))
        )
        totals.update({(key, window): count for key, window, count in rows})
    return totals


def write_pending(
    session: Session, pending: Pending, followed: list[CounterKey], prune_before: float | None
) -> dict[CounterKey, int]:
    """Write one batch; returns the totals of every flushed or ``followed`` counter."""
    totals = current_totals(session, followed)
    totals.update({key: upsert_counter(session, key[0], key[1], n) for key, n in sorted(pending.counters.items())})
    for token_id, when in pending.token_uses.items():
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=when))
    for image_id, n in pending.pulls.items():
        session.execute(update(Image).where(Image.id == image_id).values(downloads=Image.downloads + n))
    for share_id, n in pending.share_downloads.items():
        session.execute(update(Share).where(Share.id == share_id).values(downloads=Share.downloads + n))
    if pending.events:
        session.execute(insert(Event), pending.events)
    if prune_before is not None:
        session.execute(delete(Counter).where(Counter.window < math.floor(prune_before)))
    return totals


class Bookkeeping:
    """Notes facts in memory and flushes them (see the module's docstring)."""

    def __init__(
        self,
        database: Database | None,
        *,
        interval: float = FLUSH_INTERVAL,
        clock: Callable[[], float] = time.time,
        max_pending_events: int = MAX_PENDING_EVENTS,
    ) -> None:
        self.database = database
        self.interval = interval
        self.clock = clock
        self.max_pending_events = max_pending_events
        self.pending = Pending()
        self.flushing: Tally[CounterKey] = Tally()
        self.totals: dict[CounterKey, int] = {}
        self.next_prune = 0.0
        self._flush_lock: asyncio.Lock | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None

    def count(self, key: str, window: int) -> int:
        """Count one against ``key`` in the window ending at ``window``; the count so far, this one included,
        as far as this process knows (its own increments exactly, others' as of the last flush)."""
        counter = (key, window)
        self.pending.counters[counter] += 1
        return self.totals.get(counter, 0) + self.flushing[counter] + self.pending.counters[counter]

    def uncount(self, key: str, window: int) -> None:
        """Take back a count that was refused by a later check of the same request."""
        counter = (key, window)
        if self.pending.counters[counter] > 0:
            self.pending.counters[counter] -= 1

    def note_token_use(self, token_id: int) -> None:
        self.pending.token_uses[token_id] = utcnow()

    def note_pull(self, image_id: int, event: dict[str, Any], share_id: int | None = None) -> None:
        """One pull of an image (through a share link if ``share_id``): its download counts and its audit
        event (``Event`` column values)."""
        self.pending.pulls[image_id] += 1
        if share_id is not None:
            self.pending.share_downloads[share_id] += 1
        row = {"action": "pull", "at": utcnow(), **event}
        self.pending.events.append(row)
        action, line, user = audit.describe(Event(**row))
        log.debug("%s", line, extra={"event": action, "user": user})

    async def flush(self) -> None:
        """Write what is pending now; on failure keep it for the next flush. One flush at a time."""
        if self._flush_lock is None:
            self._flush_lock = asyncio.Lock()
        async with self._flush_lock:
            await self._flush()

    async def _flush(self) -> None:
        now = self.clock()
        followed = [key for key in self.totals if key[1] > now and key not in self.pending.counters]
        if self.database is None or not (self.pending or followed):
            return
        batch, self.pending = self.pending, Pending()
        self.flushing = Tally(batch.counters)  # still counted while on their way to the database
        prune_before = None
        if time.monotonic() >= self.next_prune:
            self.next_prune = time.monotonic() + PRUNE_EVERY
            prune_before = self.clock()
        try:
            try:
                totals = await self.database.write(write_pending, batch, followed, prune_before)
            except IntegrityError:
                # A user deleted since their pull was noted: keep the event under their name only.
                batch.events = [{**event, "user_id": None} for event in batch.events]
                totals = await self.database.write(write_pending, batch, followed, prune_before)
        except Exception as error:
            self.flushing = Tally()
            dropped = self.pending.absorb(batch, self.max_pending_events)
            log.warning("could not write bookkeeping (%s); retrying in %.0f s", error, self.interval)
            if dropped:
                log.warning("dropped %d pull events that could not be written", dropped)
            return
        self.totals = {key: total for key, total in {**self.totals, **totals}.items() if key[1] > now}
        self.flushing = Tally()

    def start(self) -> None:
        """Flush every ``interval`` seconds on the running loop until ``stop``."""
        self._stopping = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(self._stopping))

    async def _run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.interval)
            await self.flush()

    async def stop(self) -> None:
        """Flush what is left and stop the background task (at shutdown)."""
        if self._task is not None and self._stopping is not None:
            self._stopping.set()
            await self._task
            self._task = None
        await self.flush()
