"""PostgreSQL drops the registry's pooled connections (a restart, a failover, an administrator): reads go on
unnoticed, a write in flight answers 503 with ``Retry-After`` rather than 500, and the next write works.

The pool does not ping a connection before each use (a round trip per request); these tests show what
replaces it. The database really ends the registry's sessions, with ``pg_terminate_backend``.
"""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from sregistry_jupyter.registry import db
from sregistry_jupyter.registry.database import Database
from sregistry_jupyter.registry.errors import Unavailable
from tests.conftest import pg_database

API = "/api/v1"
FRESH = {"Cache-Control": "no-cache"}  # read from the database, not from the catalogue cache


@pytest.fixture
def db_url():
    """PostgreSQL only: SQLite has no connections to lose."""
    yield from pg_database()


def drop_connections(db_url: str) -> int:
    """End every session on the registry's database, as a restart would; how many were ended."""
    url = make_url(db_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        ended = connection.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (url.database,),
        ).fetchone()
    return ended[0]


def test_reads_survive_dropped_connections_and_writes_refuse_cleanly(registry):
    client = registry.client(registry.add_user("alice"))
    assert client.post(f"{API}/collections", json={"name": "lab"}).status_code == 201
    for _ in range(3):  # several pooled connections in use
        assert client.get(f"{API}/collections", headers=FRESH).status_code == 200

    assert drop_connections(registry.db_url) > 0
    listed = client.get(f"{API}/collections", headers=FRESH)
    assert listed.status_code == 200, listed.text
    assert [c["name"] for c in listed.json()["items"]] == ["lab"]

    assert drop_connections(registry.db_url) > 0
    write = client.post(f"{API}/collections", json={"name": "lab2"})
    if write.status_code == 503:  # the write met a dropped connection: refused, clearly, and retryable
        assert write.json()["code"] == "UNAVAILABLE"
        assert "database connection" in write.json()["message"]
        assert write.headers["Retry-After"]
        write = client.post(f"{API}/collections", json={"name": "lab2"})
    assert write.status_code == 201, write.text
    listed = client.get(f"{API}/collections", headers=FRESH)
    assert sorted(c["name"] for c in listed.json()["items"]) == ["lab", "lab2"]


def test_a_unit_of_work_on_a_dropped_connection(db_url):
    """The rule itself, without a server whose background work might meet the dropped connection first."""
    engine = db.make_engine(db_url)
    database = Database(db.make_session_factory(engine), read_workers=1, write_workers=1)
    one = text("SELECT 1")
    try:
        assert database.run_sync(lambda session: session.scalar(one), True, (), {}) == 1
        drop_connections(db_url)
        with pytest.raises(Unavailable, match="lost its database connection"):
            database.run_sync(lambda session: session.scalar(one), True, (), {})
        assert database.run_sync(lambda session: session.scalar(one), True, (), {}) == 1  # a new connection

        drop_connections(db_url)
        assert database.run_sync(lambda session: session.scalar(one), False, (), {}) == 1  # read again at once
    finally:
        database.close()
        engine.dispose()
