"""Engine creation and schema upgrades that keep data.

SQLite (the embedded default) runs in WAL mode with a busy timeout so that the server and the admin
CLI can use the same file at once. PostgreSQL URLs work unchanged. The schema is always created and
upgraded by Alembic, never by ``create_all``, so every deployment has the same history.

An upgrade runs in one process at a time (an advisory lock on PostgreSQL, a lock file beside a SQLite
database), so registry processes started together on a new database wait for each other instead of
racing to create it. A SQLite database is copied aside before its schema changes, and its migrations
run in one transaction with foreign-key actions off: rebuilding a table (how SQLite alters one) must not
cascade deletes into the tables that refer to it. The foreign keys are checked before the commit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from .database import READ_WORKERS, WRITE_WORKERS

ALEMBIC_DIR = Path(__file__).with_name("alembic")
# Any constant works, as long as every registry process uses the same one: ASCII "sregmigr".
PG_LOCK_KEY = 0x737265676D696772

log = logging.getLogger("sregistry_jupyter")


class SchemaError(RuntimeError):
    """The database's schema cannot be brought to what this version of the registry needs."""


@dataclass(frozen=True)
class Upgrade:
    """What ``upgrade`` did: the revisions before and after, and where the backup went (if one was made)."""

    before: str | None
    after: str
    backup: Path | None = None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def normalise_url(url: str) -> str:
    """Let ``postgresql://`` mean psycopg 3, the driver this package installs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


LOCK_WAIT = 10.0
# Every worker thread of ``Database`` (and the bookkeeping's flush) keeps a pooled connection: a smaller pool
# closes and reopens connections under load, which costs a connection's set-up (on SQLite its PRAGMAs, which
# may wait for a lock) on every request past the pool's size.
POOL = {"pool_size": READ_WORKERS + WRITE_WORKERS + 2, "max_overflow": 16}


def make_engine(url: str, lock_wait: float = LOCK_WAIT) -> Engine:
    """An engine whose statements give up waiting for a lock after ``lock_wait`` seconds (SQLite's busy
    timeout, PostgreSQL's ``lock_timeout``), so that a locked database becomes a clear "try again"
    rather than a request that hangs."""
    url = normalise_url(url)
    milliseconds = int(lock_wait * 1000)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": lock_wait, "check_same_thread": False}, **POOL)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout={milliseconds}")  # first: switching to WAL may wait for a lock
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    else:
        # No ``pool_pre_ping``: it costs every unit of work a round trip. A connection lost while pooled (a
        # database restart) is found on first use instead, which invalidates the whole pool; ``Database``
        # then runs a read again on a new connection and answers a write with 503 (see ``database``).
        engine = create_engine(
            url,
            **POOL,
            connect_args={"options": f"-c lock_timeout={milliseconds}"},
        )
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def sqlite_file(engine: Engine) -> Path | None:
    """The file of a SQLite database; None for PostgreSQL and for in-memory SQLite."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def script_directory() -> ScriptDirectory:
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    return ScriptDirectory.from_config(cfg)


def revisions() -> list[str]:
    """Every revision of the schema, oldest first."""
    return [script.revision for script in reversed(list(script_directory().walk_revisions()))]


def head_revision() -> str:
    head = script_directory().get_current_head()
    assert head is not None, "the migrations have no head"
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at; None if it holds no registry (yet)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_known(revision: str) -> None:
    """SchemaError unless ``revision`` is one of this version's migrations (a newer version may have gone further)."""
    try:
        script_directory().get_revision(revision)
    except CommandError:
        raise SchemaError(
            f"the database is at schema revision {revision}, which this version of sregistry-jupyter "
            f"does not know: a newer version upgraded it, so run that version"
        ) from None


def upgrade(engine: Engine, revision: str = "head", *, backup: bool = True) -> Upgrade:
    """Bring the schema to ``revision``, creating it on a new database; a no-op if it is there already.

    Only one process upgrades at a time; the others wait and then find nothing left to do. A SQLite
    database that holds a registry is copied aside first (``backup``), so an upgrade can be undone.
    """
    scripts = script_directory()
    target = scripts.get_current_head() if revision == "head" else revision
    with migration_lock(engine):
        before = current_revision(engine)
        if before == target:
            return Upgrade(before, target)
        if before is not None:
            check_known(before)
        saved = None
        path = sqlite_file(engine)
        if backup and before is not None and path is not None:
            saved = backup_sqlite(path, before)
            log.info("backed up the database (schema %s) to %s before upgrading it", before, saved)
        if before is None:
            log.info("creating the database schema (%s)", target)
        else:
            log.info("upgrading the database schema from %s to %s", before, target)
        _run_migrations(engine, revision)
    log.info("the database schema is at %s", target)
    return Upgrade(before, target, saved)


def _run_migrations(engine: Engine, revision: str) -> None:
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            connection.exec_driver_sql("SET LOCAL lock_timeout = 0")  # an upgrade waits as long as it must
            _alembic_upgrade(engine, connection, revision)
        return
    migrating = _sqlite_migration_engine(engine)
    try:
        with migrating.begin() as connection:
            _alembic_upgrade(engine, connection, revision)
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise SchemaError(f"the upgrade would leave rows that refer to missing rows: {broken[:5]}")
    finally:
        migrating.dispose()


def _alembic_upgrade(engine: Engine, connection: Connection, revision: str) -> None:
    cfg = alembic_config(engine)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _sqlite_migration_engine(engine: Engine) -> Engine:
    """An engine whose transactions really wrap DDL (Python's sqlite3 commits before DDL by default),
    with foreign-key actions off; ``BEGIN IMMEDIATE`` keeps other writers out until it commits."""
    migrating = create_engine(engine.url, poolclass=NullPool, connect_args={"timeout": 30})

    @event.listens_for(migrating, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA busy_timeout=30000")
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA foreign_keys=OFF")

    @event.listens_for(migrating, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return migrating


def backup_sqlite(path: Path, revision: str, now: dt.datetime | None = None) -> Path:
    """A consistent copy of a SQLite database beside it, named after its revision and the time (UTC).

    SQLite's backup API copies a snapshot even while other connections write, WAL content included.
    """
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.stem}.backup-{revision}-{stamp}{path.suffix}")
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
    except sqlite3.Error as error:
        target.unlink(missing_ok=True)
        raise SchemaError(f"could not back the database up to {target} before upgrading it: {error}") from None
    finally:
        source.close()
    return target


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold the registry's migration lock for this database: one process upgrades, the others wait."""
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine):
            yield
        return
    path = sqlite_file(engine)
    if path is None:
        yield
        return
    with _file_lock(path.with_name(path.name + ".lock")):
        yield


@contextlib.contextmanager
def _pg_lock(engine: Engine) -> Iterator[None]:
    with engine.connect() as connection:  # the lock belongs to this session, across its transactions
        got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": PG_LOCK_KEY}).scalar()
        if not got:
            log.info("waiting for another registry process to finish upgrading the database")
            connection.exec_driver_sql("SET LOCAL lock_timeout = 0")  # however long the other upgrade takes
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PG_LOCK_KEY})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PG_LOCK_KEY})
            connection.commit()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another registry process to finish upgrading the database")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
