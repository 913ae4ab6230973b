"""The ``sregistry-jupyter`` command itself: first start, restarts, configuration, admin commands,
migrations and a clean shutdown, run as real processes."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import sqlite3
import stat
import time
from urllib.parse import urlsplit

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from sregistry_jupyter.registry import db
from sregistry_jupyter.registry.orm import Base
from sregistry_jupyter.registry.services.search import is_search_table
from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def token_from(output: str) -> str:
    return output.strip().splitlines()[-1]


def push(url: str, token: str, data: bytes, tag: str = "latest") -> httpx.Response:
    digest = "sha256." + hashlib.sha256(data).hexdigest()
    return httpx.post(
        f"{url}/api/v1/collections/lab/containers/tool/images",
        params={"digest": digest, "tag": tag},
        content=data,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def test_first_start_creates_everything_and_a_restart_keeps_it(tmp_path, db_url, server_process):
    data_dir = tmp_path / "data"
    args = ("--data-dir", str(data_dir), "--db-url", db_url)
    first = server_process(*args)
    assert (data_dir / "storage").is_dir()
    key = data_dir / "secret_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    secret = key.read_bytes()
    run_cli("admin", "create-user", "alice", "--admin", "--terms-accepted", *args)
    token = token_from(run_cli("admin", "create-token", "alice", "--scope", "write", *args).stdout)
    image = os.urandom(70_000)
    assert push(first.url, token, image).status_code == 201
    assert first.stop() == 0

    second = server_process(*args)
    assert key.read_bytes() == secret
    me = httpx.get(f"{second.url}/api/v1/user", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["name"] == "alice"
    pulled = httpx.get(f"{second.url}/api/v1/collections/lab/containers/tool/images/latest/file")
    assert pulled.content == image


def test_sigterm_lets_an_upload_in_flight_finish(tmp_path, server_process):
    args = ("--data-dir", str(tmp_path / "data"))
    server = server_process(*args)
    run_cli("admin", "create-user", "alice", "--terms-accepted", *args)
    token = token_from(run_cli("admin", "create-token", "alice", *args).stdout)
    data = os.urandom(4 << 20)
    digest = "sha256." + hashlib.sha256(data).hexdigest()
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(
            (
                f"POST /api/v1/collections/lab/containers/tool/images?digest={digest}&tag=latest HTTP/1.1\r\n"
                f"Host: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data[: 3 << 20]
        )
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/version", timeout=2)
        sock.sendall(data[3 << 20 :])
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 201"), reply[:200]
    assert server.process.wait(30) == 0
    again = server_process(*args)
    pulled = httpx.get(f"{again.url}/api/v1/collections/lab/containers/tool/images/latest/file")
    assert pulled.content == data


def test_the_embedded_default_is_sqlite_in_the_data_dir_in_wal_mode(tmp_path, server_process):
    data_dir = tmp_path / "data"
    server = server_process("--data-dir", str(data_dir))
    run_cli("admin", "create-user", "alice", "--terms-accepted", "--data-dir", str(data_dir))
    assert server.stop() == 0
    database = data_dir / "registry.db"
    assert database.is_file()
    conn = sqlite3.connect(database)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT name FROM users").fetchall() == [("alice",)]
    finally:
        conn.close()
    engine = db.make_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    finally:
        engine.dispose()


def test_generate_config_then_load_it(tmp_path, server_process):
    result = run_cli("serve", "--generate-config", cwd=tmp_path)
    config = tmp_path / "sregistry_jupyter_config.py"
    assert config.exists(), result.stdout
    text = config.read_text()
    assert "c.RegistryApp.registry_name" in text
    assert "c.FilesystemBlobStore.root" in text
    for option in ("c.GitHubAuthenticator.client_id", "c.OIDCAuthenticator.issuer", "c.HubAuthenticator.api_url"):
        assert option in text
    assert "c.RegistryApp.trusted_proxies" in text and "c.RegistryApp.log_format" in text
    assert run_cli("serve", "--generate-config", cwd=tmp_path, check=False).returncode != 0
    config.write_text(text + "\nc.RegistryApp.registry_name = 'Tacosaurus Computing Center'\n")
    server = server_process("--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert "Tacosaurus Computing Center" in httpx.get(server.url + "/").text
    other = tmp_path / "other.py"
    other.write_text("c.RegistryApp.registry_name = 'From Another File'\n")
    server2 = server_process("--data-dir", str(tmp_path / "data2"), "--config", str(other))
    assert "From Another File" in httpx.get(server2.url + "/").text
    server3 = server_process("--data-dir", str(tmp_path / "data3"), "--RegistryApp.registry_name=On The Line")
    assert "On The Line" in httpx.get(server3.url + "/").text


def test_admin_commands_report_errors_and_tokens_follow_their_options(tmp_path, server_process):
    args = ("--data-dir", str(tmp_path / "data"))
    server = server_process(*args)
    assert "created user bob" in run_cli("admin", "create-user", "bob", "--terms-accepted", *args).stdout
    duplicate = run_cli("admin", "create-user", "bob", *args, check=False)
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    bad = run_cli("admin", "create-user", "Bad/Name", *args, check=False)
    assert bad.returncode == 1
    assert "invalid user name" in bad.stderr
    missing = run_cli("admin", "create-token", "nobody", *args, check=False)
    assert missing.returncode == 1
    assert "no user" in missing.stderr
    read = token_from(run_cli("admin", "create-token", "bob", "--scope", "read", "--expires-in", "1", *args).stdout)
    assert push(server.url, read, b"x" * 100).status_code == 403
    status = httpx.get(f"{server.url}/v1/token-status", headers={"Authorization": f"BEARER {read}"})
    assert status.status_code == 200
    tokens = httpx.get(f"{server.url}/api/v1/user/tokens", headers={"Authorization": f"Bearer {read}"}).json()
    assert tokens["items"][0]["scope"] == "read"
    assert tokens["items"][0]["expires"] is not None


def test_tokens_of_people_who_have_not_accepted_the_terms_are_refused(tmp_path, server_process):
    args = ("--data-dir", str(tmp_path / "data"))
    server = server_process(*args)
    run_cli("admin", "create-user", "carol", "--require-terms", *args)
    run_cli("admin", "create-user", "ci-bot", "--robot", *args)
    person = token_from(run_cli("admin", "create-token", "carol", *args).stdout)
    robot = token_from(run_cli("admin", "create-token", "ci-bot", *args).stdout)
    refused = httpx.get(f"{server.url}/api/v1/user", headers={"Authorization": f"Bearer {person}"})
    assert refused.status_code == 403
    assert "terms of service" in refused.json()["message"]
    assert push(server.url, robot, b"robot bytes").status_code == 201
    open_server = server_process("--data-dir", str(tmp_path / "data"), "--RegistryApp.terms_of_service=")
    assert httpx.get(f"{open_server.url}/api/v1/user", headers={"Authorization": f"Bearer {person}"}).status_code == 200


def modelled(name: str | None, kind: str, _parents: dict) -> bool:
    return not (kind == "table" and name is not None and is_search_table(name))


def test_migrations_match_the_models_and_rerun_cleanly(db_url):
    engine = db.make_engine(db_url)
    try:
        db.upgrade(engine)
        db.upgrade(engine)
        with engine.connect() as conn:
            # SQLite's full-text tables of names (and FTS5's shadow tables) are made by a migration, not the models.
            context = MigrationContext.configure(conn, opts={"include_name": modelled})
            assert context.get_current_revision() is not None
            assert compare_metadata(context, Base.metadata) == []
        assert {"users", "api_tokens", "collections", "images", "tags", "events"} <= set(
            inspect(engine).get_table_names()
        )
    finally:
        engine.dispose()


def test_allowed_hosts_adds_the_names_a_served_registry_answers_to(tmp_path, server_process):
    server = server_process(
        "--data-dir", str(tmp_path / "data"), "--RegistryApp.allowed_hosts=['Registry.Example.org']"
    )
    named = httpx.get(f"{server.url}/version", headers={"Host": "registry.example.org"})
    other = httpx.get(f"{server.url}/version", headers={"Host": "elsewhere.example.org"})
    assert named.status_code == 200
    assert other.status_code == 400 and "RegistryApp.allowed_hosts" in other.text
    config = httpx.get(f"{server.url}/assets/config/config.prod.json", headers={"Host": "registry.example.org"})
    assert config.status_code == 200 and "http://registry.example.org" in config.text
