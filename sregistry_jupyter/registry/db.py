"""Engine creation and schema migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout so that the server and the admin
CLI can use the same file at once. PostgreSQL URLs work unchanged. The schema is always created and
upgraded by Alembic, never by ``create_all``, so every deployment has the same history.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

ALEMBIC_DIR = Path(__file__).with_name("alembic")


def normalise_url(url: str) -> str:
    """Let ``postgresql://`` mean psycopg 3, the driver this package installs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


LOCK_WAIT = 10.0


def make_engine(url: str, lock_wait: float = LOCK_WAIT) -> Engine:
    """An engine whose statements give up waiting for a lock after ``lock_wait`` seconds (SQLite's busy
    timeout, PostgreSQL's ``lock_timeout``), so that a locked database becomes a clear "try again"
    rather than a request that hangs."""
    url = normalise_url(url)
    milliseconds = int(lock_wait * 1000)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": lock_wait, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={milliseconds}")
            cursor.close()

    else:
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
            connect_args={"options": f"-c lock_timeout={milliseconds}"},
        )
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (creating it on a new database)."""
    command.upgrade(alembic_config(engine), revision)
