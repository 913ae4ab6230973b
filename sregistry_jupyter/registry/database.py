"""Database work off the event loop: one session per unit of work, on worker threads.

A request never holds a database session: it hands a function ``work(session, *args)`` to ``read`` or
``write``, which runs it on a worker thread with a session of its own, commits (``write``) or rolls
back, and closes the session before the request goes on. So no transaction spans an ``await``, a
request waiting for SQLite's write lock (or a PostgreSQL row lock) waits on its thread while the event
loop serves everyone else, and pooled connections are never held by requests that are reading a body.

Reads and writes have separate pools. With SQLite in WAL mode readers never wait for the writer, so
while another process holds the write lock (an admin command, a migration, a long GC), reads keep being
answered and only writes queue; a write that cannot get the lock within ``lock_wait`` seconds answers
503 with ``Retry-After`` instead of hanging. What ``work`` returns must be plain data: ORM objects are
detached when the session closes and must not be touched afterwards.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from .errors import InsufficientStorage, Unavailable

log = logging.getLogger("sregistry_jupyter")

P = ParamSpec("P")
T = TypeVar("T")

READ_WORKERS = 8
WRITE_WORKERS = 4
RETRY_AFTER = 2

# Messages the two engines use for "could not get the lock in time" and "no space left".
LOCKED_MARKERS = ("database is locked", "database table is locked", "lock timeout", "canceling statement due to lock")
FULL_MARKERS = ("database or disk is full", "no space left on device", "could not extend file", "disk full")
PG_LOCK_NOT_AVAILABLE = "55P03"
PG_DISK_FULL = "53100"


def translate(error: DBAPIError) -> Exception | None:
    """The registry error for a database failure a client can do something about (retry later, free
    space), or None for the failures that are bugs and must surface as such."""
    if error.connection_invalidated:
        return Unavailable("the registry lost its database connection; try again", retry_after=RETRY_AFTER)
    text = str(error.orig).lower() if error.orig is not None else str(error).lower()
    code = getattr(error.orig, "sqlstate", None)
    if code == PG_LOCK_NOT_AVAILABLE or any(marker in text for marker in LOCKED_MARKERS):
        return Unavailable("the registry's database is busy; try again shortly", retry_after=RETRY_AFTER)
    if code == PG_DISK_FULL or any(marker in text for marker in FULL_MARKERS):
        return InsufficientStorage("the registry's database has no space left; tell the registry's staff")
    if isinstance(error.orig, OSError) and error.orig.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage("the registry's database has no space left; tell the registry's staff")
    return None


class Database:
    """Runs units of database work on worker threads (see the module's docstring)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        read_workers: int = READ_WORKERS,
        write_workers: int = WRITE_WORKERS,
    ) -> None:
        self.session_factory = session_factory
        self.readers = ThreadPoolExecutor(read_workers, thread_name_prefix="db-read")
        self.writers = ThreadPoolExecutor(write_workers, thread_name_prefix="db-write")

    async def read(self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``work(session, *args)`` in a transaction that is never committed: it must not write.

        Closing the session ends the transaction without expiring what was loaded, so columns of returned
        rows stay readable (relationships not loaded inside ``work`` do not)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.readers, self.run_sync, work, False, args, kwargs)

    async def write(self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``work(session, *args)`` in a transaction committed if it returns, rolled back if it raises."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.writers, self.run_sync, work, True, args, kwargs)

    def run_sync(self, work: Callable[..., T], commit: bool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        """One unit of work on the calling thread (the pools', or a command-line tool's).

        Pooled connections are not tested before use, so one the database dropped meanwhile (a restart) fails
        on first use, and the pool then replaces all of its connections. A read runs again, once, on a new
        connection; a write does not, because the lost connection may have committed it: it answers 503."""
        try:
            try:
                return self._unit(work, commit, args, kwargs)
            except DBAPIError as error:
                if commit or not error.connection_invalidated:
                    raise
                log.warning("lost a database connection (%s); reading again on a new one", error.orig)
            return self._unit(work, commit, args, kwargs)
        except DBAPIError as error:
            translated = translate(error)
            if translated is None:
                raise
            log.warning("database unavailable for a request: %s", error.orig)
            raise translated from None

    def _unit(self, work: Callable[..., T], commit: bool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        with self.session_factory() as session:
            result = work(session, *args, **kwargs)
            if commit:
                session.commit()
            return result

    def close(self) -> None:
        """Let running work finish and stop the threads (at shutdown)."""
        self.readers.shutdown(wait=True)
        self.writers.shutdown(wait=True)

