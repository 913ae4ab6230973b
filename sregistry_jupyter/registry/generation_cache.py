"""Facts remembered between requests while a database generation says nothing has changed them.

A *generation* is a row of ``generations`` (migration 0006) whose number database triggers bump in the
transaction of any change to the facts it covers; triggers rather than service code, so that no code path or
cascade can forget. A ``GenerationCache`` keeps facts read at one generation only: when a newer one is seen,
everything older is dropped, and a fact read at an older generation is never kept. The generation is learnt
three ways:

- from every read that misses the cache, which reads the generation first (before the facts, or in the same
  statement): facts newer than their generation are harmless, older ones impossible;
- from this process's own commits that change a watched table (``watch``): the generation is read inside the
  committing transaction, so what a request changes here is seen by the very next request here;
- from the registry's periodic check (``Registry.start``), for changes made by other processes or the admin
  command.

An entry is used only while the generation was confirmed within ``max_age`` seconds, so another process's
change takes effect here within that bound even if the periodic check is not running. Only successes are
remembered. Two caches use this rule: verified bearer tokens (``credential_cache``) and the answers of the
catalogue's hot reads (``catalogue_cache``).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import ScalarSelect, event, select
from sqlalchemy.orm import Session, sessionmaker

from .orm import Base, Generation, utcnow

# PostgreSQL bumps the catalogue generation by deferred triggers, at commit; this runs them at once, inside
# the committing transaction, so that the new number can be read there (see ``watch``). It is sent on the
# connection, beneath the session's events, so that it does not count as a change itself.
RUN_DEFERRED_TRIGGERS = "SET CONSTRAINTS ALL IMMEDIATE"


def generation_of(name: str) -> ScalarSelect[int]:
    """The number of generation ``name``, as a scalar subquery to read alongside the facts it covers."""
    return select(Generation.value).where(Generation.name == name).scalar_subquery()


def one(_value: Any) -> int:
    return 1


class GenerationCache:
    """Facts read at the current generation of ``name`` (see the module's docstring).

    ``capacity`` bounds the sum of the entries' weights (``weigh``, one each by default), the least recently
    used going first; an entry heavier than ``largest`` is not kept, so that one cannot flush the rest."""

    def __init__(
        self,
        name: str,
        watched: tuple[type[Base], ...],
        max_age: float,
        capacity: int,
        weigh: Callable[[Any], int] = one,
        largest: int | None = None,
    ) -> None:
        self.name = name
        self.max_age = max_age
        self.capacity = capacity
        self.generation: int | None = None
        self.confirmed_at = 0.0
        self._watched = watched
        self._watched_tables = frozenset({None, *(cls.__table__.name for cls in watched)})  # None: unknown
        self._weigh = weigh
        self._largest = capacity if largest is None else largest
        self._weight = 0
        self._entries: OrderedDict[Hashable, tuple[Any, dt.datetime | None, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._changed = f"{name}-changed"
        self._seen = f"{name}-generation"

    @property
    def weight(self) -> int:
        """The entries' total weight (at most ``capacity``)."""
        return self._weight

    def lookup(self, key: Hashable) -> Any | None:
        """What ``key`` stands for, if it was read at a generation confirmed recently and has not expired."""
        if self.generation is None or time.monotonic() - self.confirmed_at > self.max_age:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            value, valid_until, _weight = entry
            if valid_until is not None and utcnow() >= valid_until:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return value

    def observe(self, generation: int, read_at: float) -> None:
        """The database's generation was ``generation`` at (monotonic) ``read_at`` or later.

        Generations only grow: a newer one drops every entry, an older one (a read that started before a
        change committed) changes nothing."""
        with self._lock:
            if self.generation is None or generation > self.generation:
                self._entries.clear()
                self._weight = 0
                self.generation = generation
                self.confirmed_at = read_at
            elif generation == self.generation:
                self.confirmed_at = max(self.confirmed_at, read_at)

    def remember(self, key: Hashable, value: Any, generation: int, valid_until: dt.datetime | None = None) -> None:
        """Keep ``value`` for ``key``, if it was read at the current generation (older reads may be stale)
        and it is not too heavy."""
        weight = self._weigh(value)
        if weight > self._largest:
            return
        with self._lock:
            if generation != self.generation:
                return
            self._drop(key)
            self._entries[key] = (value, valid_until, weight)
            self._weight += weight
            while self._weight > self.capacity:
                self._drop(next(iter(self._entries)))

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._weight -= entry[2]

    def __len__(self) -> int:
        return len(self._entries)

    def read_generation(self, session: Session) -> int:
        """This generation's number as ``session``'s transaction sees it."""
        return session.scalar(select(generation_of(self.name))) or 0

    def watch(self, session_factory: sessionmaker[Session]) -> None:
        """Learn the new generation from every commit of ``session_factory``'s sessions that changes a watched
        table, reading it inside the committing transaction (after the triggers have bumped it)."""

        @event.listens_for(session_factory, "after_flush")
        def _flushed(session: Session, _context: Any) -> None:
            if any(isinstance(row, self._watched) for row in (*session.new, *session.dirty, *session.deleted)):
                session.info[self._changed] = True

        @event.listens_for(session_factory, "do_orm_execute")
        def _executed(state: Any) -> None:
            # A statement that is not a select and names no table (text) may write anything: counted as a change.
            if not state.is_select and _table_of(state.statement) in self._watched_tables:
                state.session.info[self._changed] = True

        @event.listens_for(session_factory, "before_commit")
        def _committing(session: Session) -> None:
            session.flush()
            if session.info.pop(self._changed, False):
                if session.get_bind().dialect.name == "postgresql":
                    session.connection().exec_driver_sql(RUN_DEFERRED_TRIGGERS)
                read_at = time.monotonic()
                session.info[self._seen] = (self.read_generation(session), read_at)

        @event.listens_for(session_factory, "after_commit")
        def _committed(session: Session) -> None:
            seen = session.info.pop(self._seen, None)
            if seen is not None:
                self.observe(*seen)

        @event.listens_for(session_factory, "after_rollback")
        def _rolled_back(session: Session) -> None:
            session.info.pop(self._changed, None)
            session.info.pop(self._seen, None)


def _table_of(statement: Any) -> str | None:
    table = getattr(statement, "table", None)
    return getattr(table, "name", None)


def read_generations(session: Session) -> dict[str, int]:
    """Every generation's number, by name, in one statement."""
    return {name: value for name, value in session.execute(select(Generation.name, Generation.value))}
