"""Schema upgrades keep data: from every earlier revision to the newest, on SQLite and PostgreSQL, a filled
database comes through with every row intact and usable by a live registry (tokens authenticate, images
pull, invitations and share links work); SQLite is backed up first; a failed upgrade changes nothing;
processes started at once on a new database all come up.

The revisions come from the migrations themselves, so a new migration is covered without changing this file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, func, inspect, select

from sregistry_jupyter.registry import db
from tests.conftest import CLI, SECRET, pg_database, run_cli, wait_until_serving
from tests.gotools import make_sif
from tests.registry import schema_fill
from tests.registry.test_sign_in import sign_in

pytestmark = pytest.mark.slow

EARLIER = db.revisions()[:-1]
HEAD = db.head_revision()
FILE = "/api/v1/collections/{}/containers/{}/images/latest/file"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def revision_of(engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@pytest.fixture(scope="module")
def image(mksif: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_sif(mksif, tmp_path_factory.mktemp("sif") / "old.sif", size=300_000, seed=11).read_bytes()


def store_blob(data_dir: Path, data: bytes) -> None:
    """Put the image's bytes where the filesystem store keeps them, as the push that made the rows did."""
    hexdigest = hashlib.sha256(data).hexdigest()
    path = data_dir / "storage" / "blobs" / "sha256" / hexdigest[:2] / hexdigest
    path.parent.mkdir(parents=True)
    path.write_bytes(data)


@pytest.mark.parametrize("start", EARLIER)
def test_an_upgrade_from_every_earlier_revision_keeps_every_row_usable(
    start, db_url, tmp_path, image, server_process, libclient_bin
):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "secret_key").write_bytes(SECRET)
    store_blob(data_dir, image)
    engine = db.make_engine(db_url)
    try:
        db.upgrade(engine, start)
        filled = schema_fill.fill(engine, image)
        engine.dispose()
        assert revision_of(engine) == start

        server = server_process("--data-dir", str(data_dir), "--db-url", db_url)

        assert revision_of(engine) == HEAD
        assert schema_fill.missing_or_changed(engine, filled) == []
    finally:
        engine.dispose()

    backups = sorted(Path(tmp_path).glob(f"registry.backup-{start}-*.db"))
    if db_url.startswith("sqlite"):
        [backup] = backups
        with sqlite3.connect(backup) as copy:
            assert copy.execute("SELECT version_num FROM alembic_version").fetchall() == [(start,)]
            assert len(copy.execute("SELECT name FROM users").fetchall()) == len(filled.rows["users"])
    else:
        assert backups == []

    url = server.url
    alice, robot = filled.tokens["alice-write"], filled.tokens["robot-write"]
    me = httpx.get(f"{url}/api/v1/user", headers=bearer(alice))
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "alice"
    for refused in ("bob-revoked", "bob-expired"):
        assert httpx.get(f"{url}/api/v1/user", headers=bearer(filled.tokens[refused])).status_code == 401

    assert httpx.get(url + FILE.format("lab", "tools")).content == image
    assert httpx.get(url + FILE.format("vault", "hidden")).status_code == 404
    assert httpx.get(url + FILE.format("vault", "hidden"), headers=bearer(alice)).content == image
    pulled = tmp_path / "pulled.sif"
    result = subprocess.run(
        [
            str(libclient_bin),
            "pull",
            "-url",
            url,
            "-ref",
            "alice/lab/tools:latest",
            "-arch",
            "amd64",
            "-out",
            str(pulled),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SREG_TOKEN": alice},
    )
    assert result.returncode == 0, result.stderr
    assert pulled.read_bytes() == image

    pushed = os.urandom(5000)
    digest = "sha256." + hashlib.sha256(pushed).hexdigest()
    response = httpx.post(
        f"{url}/api/v1/collections/lab/containers/tools/images",
        params={"digest": digest, "tag": "next"},
        content=pushed,
        headers=bearer(robot),
    )
    assert response.status_code == 409, response.text  # the robot has no role in lab: the roles came through
    response = httpx.post(
        f"{url}/api/v1/collections/lab/containers/tools/images",
        params={"digest": digest, "tag": "next"},
        content=pushed,
        headers=bearer(alice),
    )
    assert response.status_code == 201, response.text
    assert httpx.get(url + "/api/v1/collections/lab/containers/tools/images/next/file").content == pushed

    members = httpx.get(f"{url}/api/v1/collections/lab/members", headers=bearer(alice)).json()["items"]
    assert members == [{"user": "alice", "role": "owner"}, {"user": "bob", "role": "contributor"}]
    team = httpx.get(f"{url}/api/v1/teams/group", headers=bearer(alice)).json()
    assert team["members"] == [{"user": "alice", "role": "owner"}, {"user": "bob", "role": "member"}]
    stars = httpx.get(f"{url}/api/v1/user/stars", headers=bearer(filled.tokens["bob-read"])).json()["items"]
    assert [star["name"] for star in stars] == ["lab"]

    args = ("--data-dir", str(data_dir), "--db-url", db_url)
    run_cli("admin", "create-user", "carol", *args)
    carol = run_cli("admin", "create-token", "carol", "--scope", "admin", *args).stdout.strip().splitlines()[-1]
    joined = httpx.post(f"{url}/api/v1/invitations/{filled.invitation}", headers=bearer(carol))
    assert joined.status_code == 200, joined.text
    assert {"user": "carol", "role": "member"} in joined.json()["members"]

    if filled.has("shares"):
        assert httpx.get(f"{url}/shares/{filled.share}").content == image

    with httpx.Client(base_url=url, follow_redirects=False) as browser:
        assert sign_in(browser, "bob", schema_fill.PASSWORD).status_code == 303
        assert sign_in(browser, "bob", "not the password").status_code == 403


def migrations_with(extra: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The package's migrations plus one more after the head (its source ``extra``); returns its revision."""
    scripts = tmp_path / "alembic"
    shutil.copytree(db.ALEMBIC_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    revision = "zz_test_extra"
    (scripts / "versions" / f"{revision}.py").write_text(
        f'"""an extra migration for a test"""\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f"revision = {revision!r}\ndown_revision = {HEAD!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade() -> None:\n{extra}\n"
    )
    monkeypatch.setattr(db, "ALEMBIC_DIR", scripts)
    return revision


def counts(engine) -> dict[str, int]:
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return {
            name: connection.execute(select(func.count()).select_from(table)).scalar()
            for name, table in metadata.tables.items()
        }


def test_a_failed_upgrade_leaves_the_schema_and_every_row_as_they_were(db_url, tmp_path, image, monkeypatch):
    engine = db.make_engine(db_url)
    try:
        db.upgrade(engine)
        filled = schema_fill.fill(engine, image)
        before = counts(engine)
        extra = migrations_with(
            "    op.add_column('users', sa.Column('nickname', sa.String(20)))\n"
            "    op.execute('DELETE FROM api_tokens')\n"
            "    op.execute('SELECT no_such_function()')",
            tmp_path,
            monkeypatch,
        )
        with pytest.raises(Exception, match="no_such_function"):
            db.upgrade(engine, extra)
        engine.dispose()
        assert revision_of(engine) == HEAD
        assert counts(engine) == before
        assert "nickname" not in {column["name"] for column in inspect(engine).get_columns("users")}
        assert schema_fill.missing_or_changed(engine, filled) == []
    finally:
        engine.dispose()


def test_rebuilding_a_table_in_sqlite_cascades_into_no_other_table(tmp_path, image, monkeypatch):
    """SQLite alters a table by copying it and dropping the old one; with foreign-key actions on, the drop
    would delete every token, membership and image row that refers to a user."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        db.upgrade(engine)
        filled = schema_fill.fill(engine, image)
        before = counts(engine)
        extra = migrations_with(
            "    with op.batch_alter_table('users', recreate='always') as batch:\n"
            "        batch.add_column(sa.Column('nickname', sa.String(20)))",
            tmp_path,
            monkeypatch,
        )
        done = db.upgrade(engine, extra)
        assert (done.before, done.after) == (HEAD, extra)
        assert done.backup is not None and done.backup.exists()
        engine.dispose()
        assert counts(engine) == before
        assert schema_fill.missing_or_changed(engine, filled) == []
    finally:
        engine.dispose()


def test_no_backup_is_made_when_nothing_is_pending_or_the_database_is_new(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        created = db.upgrade(engine)
        again = db.upgrade(engine)
    finally:
        engine.dispose()
    assert (created.before, created.after, created.backup) == (None, HEAD, None)
    assert (again.changed, again.backup) == (False, None)
    assert list(tmp_path.glob("*backup*")) == []


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"])
def test_processes_started_at_once_on_a_new_database_all_come_up(engine_name, tmp_path):
    if engine_name == "sqlite":
        url, cleanup = f"sqlite:///{tmp_path / 'shared.db'}", None
    else:
        cleanup = pg_database()
        url = next(cleanup)
    (tmp_path / "secret_key").write_bytes(SECRET)
    processes, logs = [], []
    try:
        for n in range(4):
            log = tmp_path / f"serve-{n}.log"
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    [
                        *CLI,
                        "serve",
                        "--port",
                        "0",
                        "--data-dir",
                        str(tmp_path),
                        "--db-url",
                        url,
                        "--log-format",
                        "json",
                    ],
                    stdout=subprocess.PIPE,
                    stderr=log.open("w"),
                    text=True,
                )
            )
        urls = []
        for process, log in zip(processes, logs, strict=True):
            line = process.stdout.readline()
            assert "is running at" in line, f"exited {process.poll()}:\n{log.read_text()}"
            urls.append(line.split("is running at ")[1].strip())
        for address, process, log in zip(urls, processes, logs, strict=True):
            wait_until_serving(process, address + "version", log, "a registry started at the same time")
        messages = [json.loads(line)["message"] for log in logs for line in log.read_text().splitlines()]
        assert sum(message.startswith("creating the database schema") for message in messages) == 1
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
        if cleanup is not None:
            cleanup.close()


def test_a_later_migration_is_filled_too(tmp_path, image, monkeypatch):
    """What the test above does with a migration added after this file was written: its new table gets a row
    whose foreign key points at a row already there, and its new NOT NULL column a value."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        extra = migrations_with(
            "    op.create_table('upload_receipts', sa.Column('id', sa.Integer(), primary_key=True),\n"
            "        sa.Column('upload_id', sa.String(64), sa.ForeignKey('upload_sessions.id'), nullable=False),\n"
            "        sa.Column('number', sa.Integer(), nullable=False),\n"
            "        sa.Column('etag', sa.String(80), nullable=False))\n"
            "    with op.batch_alter_table('images') as batch:\n"
            "        batch.add_column(sa.Column('checked_at', sa.DateTime(), nullable=True))",
            tmp_path,
            monkeypatch,
        )
        assert db.revisions()[-1] == extra
        db.upgrade(engine)
        filled = schema_fill.fill(engine, image)
        [part] = filled.rows["upload_receipts"]
        assert part["upload_id"] == "f" * 32 and part["etag"].startswith("upload_r-etag-")
        assert {row["checked_at"] for row in filled.rows["images"]} == {None}
        assert schema_fill.missing_or_changed(engine, filled) == []
    finally:
        engine.dispose()
