"""Shared fixtures: a fresh database on each engine, a live registry on a free loopback port, users
with tokens, and the real command line.

Every test that takes ``registry`` (or ``db_url``) runs twice: on SQLite and on PostgreSQL
(``SREGISTRY_TEST_PG_URL``, default the local server's ``test`` database, used to create a scratch
database per test).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url
from tornado.netutil import bind_sockets

from sregistry_jupyter.registry import db
from sregistry_jupyter.registry.connections import make_server
from sregistry_jupyter.registry.context import Registry
from sregistry_jupyter.registry.services import users
from sregistry_jupyter.registry.storage import BlobStore, FilesystemBlobStore
from sregistry_jupyter.registry.webapp import make_app

PG_ADMIN_URL = os.environ.get("SREGISTRY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
SECRET = b"test-secret-key"
CLI = [sys.executable, "-m", "sregistry_jupyter.registry"]


def pg_database() -> Iterator[str]:
    """A scratch PostgreSQL database's URL, dropped when the generator is closed."""
    name = f"sreg_{uuid.uuid4().hex[:12]}"
    admin_url = make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(PG_ADMIN_URL)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], bool], timeout: float = 10) -> bool:
    """Whether ``predicate`` holds within ``timeout`` seconds: for what the server finishes after answering."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def wait_until_serving(process: subprocess.Popen, url: str, log: Path, what: str, seconds: float = 60) -> None:
    """Wait for a server process to answer ``url`` with 200; fail with its log if it exits or is too slow."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not start:\n{log.read_text()}")


def blobs_on_disk(registry: LiveRegistry) -> list[str]:
    """The digests the blob store holds, read from its folders rather than from the database."""
    return sorted(p.name for p in (registry.data_dir / "storage" / "blobs" / "sha256").glob("*/*"))


def terminate(process: subprocess.Popen, seconds: float) -> None:
    """Stop a process a fixture started, by its PID: SIGTERM, then SIGKILL if it has not exited in ``seconds``."""
    process.terminate()
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def uploads_on_disk(registry: LiveRegistry) -> list[str]:
    """The blob store's unfinished uploads, which a failed or abandoned upload must not leave behind."""
    return sorted(p.name for p in (registry.data_dir / "storage" / "uploads").iterdir())


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database, once for each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        yield from pg_database()


@dataclass
class LiveRegistry:
    """A registry served from a background thread, with helpers to make users and clients."""

    url: str
    context: Registry
    data_dir: Path
    db_url: str
    clients: list[httpx.Client] = field(default_factory=list)

    def session(self):
        return self.context.session_factory()

    def add_user(
        self,
        name: str,
        *,
        admin: bool = False,
        staff: bool = False,
        scope: str = "admin",
        expires_in_days: float | None = None,
    ) -> str:
        """Create ``name`` (if new) and return a fresh token of ``scope`` for it."""
        with self.session() as session:
            try:
                user = users.get_user(session, name)
            except Exception:
                user = users.create_user(session, name, admin=admin, staff=staff)
            _, token = users.create_token(
                session,
                user,
                self.context.secret_key,
                name=f"t-{uuid.uuid4().hex[:6]}",
                scope=scope,
                expires_in_days=expires_in_days,
            )
            session.commit()
        return token

    def flush(self) -> None:
        flush(self.context)

    def client(self, token: str | None = None, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)
        self.clients.append(client)
        return client


def flush(context: Registry) -> None:
    """Write a serving registry's pending bookkeeping (counters, token use, pulls) now, as its background
    task would within a second, so that a test can read it from the database."""
    asyncio.run_coroutine_threadsafe(context.bookkeeping.flush(), context.loop).result(30)


def start_in_thread(context: Registry) -> tuple[str, callable]:
    """Serve ``context`` on a free loopback port from a thread; returns the URL and a stop function."""
    ready = threading.Event()
    state: dict = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = make_server(make_app(context), context)
        sockets = bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        loop.run_until_complete(context.start())
        state.update(loop=loop, server=server, port=sockets[0].getsockname()[1])
        ready.set()
        loop.run_forever()
        server.stop()
        loop.run_until_complete(server.close_all_connections())
        loop.run_until_complete(context.stop())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)

    def stop() -> None:
        state["loop"].call_soon_threadsafe(state["loop"].stop)
        thread.join(10)

    return f"http://127.0.0.1:{state['port']}", stop


def open_context(
    db_url: str, data_dir: Path, lock_wait: float = db.LOCK_WAIT, store: BlobStore | None = None, **settings
) -> Registry:
    """A registry on ``db_url`` whose data dir holds its secret key, as a real start leaves it, so that the
    admin commands run against it sign with the same key (its blobs in ``store``, by default a folder there)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "secret_key").write_bytes(SECRET)
    engine = db.make_engine(db_url, lock_wait)
    db.upgrade(engine)
    store = store or FilesystemBlobStore(root=str(data_dir / "storage"))
    return Registry(
        engine=engine,
        session_factory=db.make_session_factory(engine),
        store=store,
        secret_key=SECRET,
        **{"name": "Test Registry", **settings},
    )


@pytest.fixture
def registry_settings() -> dict:
    """Override in a test module to start the registry with other settings."""
    return {}


@pytest.fixture
def registry(db_url: str, tmp_path: Path, registry_settings: dict) -> Iterator[LiveRegistry]:
    data_dir = tmp_path / "data"
    context = open_context(db_url, data_dir, **registry_settings)
    url, stop = start_in_thread(context)
    live = LiveRegistry(url, context, data_dir, db_url)
    try:
        yield live
    finally:
        for client in live.clients:
            client.close()
        stop()


@dataclass
class ServerProcess:
    """The real ``sregistry-jupyter serve`` command in a subprocess."""

    process: subprocess.Popen
    url: str

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def run_cli(
    *args: str, cwd: Path | None = None, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def start_process(*args: str, cwd: Path | None = None, env: dict | None = None) -> ServerProcess:
    """Start ``serve`` on a free port, or on the one ``args`` name with ``--port``."""
    port = [] if "--port" in args else ["--port", "0"]
    process = subprocess.Popen(
        [*CLI, "serve", *port, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        match = re.search(r"is running at (http://\S+?)/?$", line.strip())
        if match:
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return ServerProcess(process, match.group(1))
    raise AssertionError("the server did not start:\n" + "".join(lines))


@pytest.fixture
def server_process() -> Iterator[callable]:
    """Start real server processes; every one still running is stopped after the test."""
    started: list[ServerProcess] = []

    def start(*args: str, **kwargs) -> ServerProcess:
        proc = start_process(*args, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.process.poll() is None:
            proc.process.kill()
            proc.process.wait(10)
