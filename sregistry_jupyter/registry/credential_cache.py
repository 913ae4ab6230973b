"""Verified bearer tokens remembered between requests, and the rule that keeps them right.

Checking a bearer token is a database round trip, on every authenticated request; most requests present a
token that was checked a moment ago. This cache keeps what each verified token stands for, keyed by the token's
SHA-256, for as long as nothing could have changed it. (Browser sessions are not remembered: signing out must
end a session at once on every process, and pages are not where the round trip matters.)

"Nothing could have changed it" is the credentials generation (``generations`` row, migration 0006): database
triggers bump it in the transaction of any change that alters what a token means (a token revoked, expired
early or re-scoped, a user disabled, renamed or given other rights). Every lookup reads the generation in the
same statement as the token, so an entry is tagged with the generation of the snapshot it was read from, and
the cache holds entries of one generation only: when a newer one is seen, everything older is dropped. The
generation is learnt three ways:

- from every token lookup that misses the cache;
- from this process's own commits that touch a watched table (``watch``): the generation is read inside the
  transaction, so a token revoked here is refused by the very next request here;
- from the registry's periodic check (``Registry.start``), for changes made by other processes or the admin
  command.

An entry is used only while the generation was confirmed within ``max_age`` seconds: another process's
revocation takes effect here within that bound even if the periodic check is not running. Expiry is checked on
every use. Only successes are remembered; an unknown or refused credential is looked up every time.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from .orm import ApiToken, Generation, User, utcnow

CREDENTIALS = "credentials"
GENERATION = select(Generation.value).where(Generation.name == CREDENTIALS).scalar_subquery()
WATCHED_CLASSES = (ApiToken, User)
WATCHED_TABLES = frozenset(cls.__table__.name for cls in WATCHED_CLASSES)
DEFAULT_SIZE = 10_000
CHANGED = "credentials-changed"
SEEN = "credentials-generation"


class CredentialCache:
    """Credentials verified at the current generation (see the module's docstring)."""

    def __init__(self, max_age: float, size: int = DEFAULT_SIZE) -> None:
        self.max_age = max_age
        self.size = size
        self.generation: int | None = None
        self.confirmed_at = 0.0
        self._entries: OrderedDict[Hashable, tuple[Any, dt.datetime | None]] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, key: Hashable) -> Any | None:
        """What ``key`` stands for, if it was verified at a generation confirmed recently and has not expired."""
        if self.generation is None or time.monotonic() - self.confirmed_at > self.max_age:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            value, valid_until = entry
            if valid_until is not None and utcnow() >= valid_until:
                del self._entries[key]
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
                self.generation = generation
                self.confirmed_at = read_at
            elif generation == self.generation:
                self.confirmed_at = max(self.confirmed_at, read_at)

    def remember(self, key: Hashable, value: Any, generation: int, valid_until: dt.datetime | None) -> None:
        """Keep ``value`` for ``key``, if it was read at the current generation (older reads may be stale)."""
        with self._lock:
            if generation != self.generation:
                return
            self._entries[key] = (value, valid_until)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def watch(self, session_factory: sessionmaker[Session]) -> None:
        """Learn the new generation from every commit of ``session_factory``'s sessions that changes a watched
        table, reading it inside the committing transaction (where the triggers have already bumped it)."""

        @event.listens_for(session_factory, "after_flush")
        def _flushed(session: Session, _context: Any) -> None:
            if any(isinstance(row, WATCHED_CLASSES) for row in (*session.dirty, *session.deleted)):
                session.info[CHANGED] = True

        @event.listens_for(session_factory, "do_orm_execute")
        def _executed(state: Any) -> None:
            if (state.is_update or state.is_delete) and _table_of(state.statement) in WATCHED_TABLES:
                state.session.info[CHANGED] = True

        @event.listens_for(session_factory, "before_commit")
        def _committing(session: Session) -> None:
            session.flush()
            if session.info.pop(CHANGED, False):
                session.info[SEEN] = (session.scalar(select(GENERATION)), time.monotonic())

        @event.listens_for(session_factory, "after_commit")
        def _committed(session: Session) -> None:
            seen = session.info.pop(SEEN, None)
            if seen is not None:
                self.observe(*seen)

        @event.listens_for(session_factory, "after_rollback")
        def _rolled_back(session: Session) -> None:
            session.info.pop(CHANGED, None)
            session.info.pop(SEEN, None)


def _table_of(statement: Any) -> str | None:
    table = getattr(statement, "table", None)
    return getattr(table, "name", None)


def current_generation(session: Session) -> int:
    """The credentials generation as this transaction sees it."""
    return session.scalar(select(GENERATION)) or 0
