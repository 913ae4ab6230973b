"""Garbage collection of unreferenced blobs, while the registry keeps serving, on both databases."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from sregistry_jupyter.registry.orm import Blob, Event
from sregistry_jupyter.registry.services import gc, images
from tests.conftest import run_cli

IMAGES = "/api/v1/collections/{c}/containers/{n}/images"
HOUR = dt.timedelta(hours=1)


def digest_of(data: bytes) -> str:
    return "sha256." + hashlib.sha256(data).hexdigest()


def push(client: httpx.Client, data: bytes, container: str = "tool") -> None:
    url = IMAGES.format(c="lab", n=container)
    response = client.post(url, params={"digest": digest_of(data), "tag": "latest"}, content=data)
    assert response.status_code == 201, response.text


def delete_image(client: httpx.Client, digest: str, container: str = "tool") -> None:
    response = client.delete(IMAGES.format(c="lab", n=container) + f"/{digest}")
    assert response.status_code == 204, response.text


def collect(registry, **kwargs) -> gc.GcReport:
    with registry.session() as session:
        return gc.collect(session, registry.context.store, **kwargs)


def age_blob(registry, digest: str, age: dt.timedelta) -> None:
    """Back-date a blob's file, as if it had been written ``age`` ago."""
    when = time.time() - age.total_seconds()
    os.utime(registry.context.store.path_for(digest), (when, when))


def stored(registry, digest: str) -> bool:
    return registry.context.store.stat(digest) is not None


def blob_row(registry, digest: str) -> Blob | None:
    with registry.session() as session:
        return session.get(Blob, digest)


def references(registry, digest: str) -> int:
    with registry.session() as session:
        return images.blob_references(session, digest)


def gc_events(registry) -> list[dict]:
    with registry.session() as session:
        return [e.detail for e in session.scalars(select(Event).where(Event.action == "gc").order_by(Event.id))]


@pytest.fixture
def alice(registry) -> httpx.Client:
    return registry.client(registry.add_user("alice"))


def test_blob_of_a_deleted_image_is_kept_in_grace_then_collected(registry, alice):
    live, dead = os.urandom(3000), os.urandom(5000)
    push(alice, live, "keep")
    push(alice, dead)
    delete_image(alice, digest_of(dead))

    young = collect(registry, grace=HOUR)
    assert (young.removed, young.kept_in_grace) == ([], 1)
    assert stored(registry, digest_of(dead))

    age_blob(registry, digest_of(dead), 2 * HOUR)
    age_blob(registry, digest_of(live), 2 * HOUR)
    dry = collect(registry, grace=HOUR, dry_run=True)
    assert (dry.removed, dry.freed_bytes, dry.kept_in_grace) == ([digest_of(dead)], len(dead), 0)
    assert stored(registry, digest_of(dead))
    assert blob_row(registry, digest_of(dead)) is not None

    report = collect(registry, grace=HOUR)
    assert (report.removed, report.freed_bytes) == (dry.removed, dry.freed_bytes)
    assert not stored(registry, digest_of(dead))
    assert blob_row(registry, digest_of(dead)) is None
    assert stored(registry, digest_of(live))
    assert blob_row(registry, digest_of(live)) is not None
    assert registry.client().get(IMAGES.format(c="lab", n="keep") + "/latest/file").content == live


def test_gc_records_an_audit_event_unless_dry_run(registry, alice):
    data = os.urandom(2000)
    push(alice, data)
    delete_image(alice, digest_of(data))
    collect(registry, grace=dt.timedelta(0), dry_run=True)
    assert gc_events(registry) == []
    collect(registry, grace=dt.timedelta(0))
    assert gc_events(registry) == [{"removed": 1, "freed": len(data)}]


def test_blob_shared_by_two_images_stays_until_the_last_goes(registry, alice):
    data = os.urandom(4000)
    digest = digest_of(data)
    assert references(registry, digest) == 0
    push(alice, data, "one")
    push(alice, data, "two")
    assert references(registry, digest) == 2

    delete_image(alice, digest, "one")
    assert references(registry, digest) == 1
    report = collect(registry, grace=dt.timedelta(0))
    assert (report.removed, report.kept_in_grace) == ([], 0)
    assert stored(registry, digest)
    assert registry.client().get(IMAGES.format(c="lab", n="two") + "/latest/file").content == data

    delete_image(alice, digest, "two")
    assert references(registry, digest) == 0
    assert collect(registry, grace=dt.timedelta(0)).removed == [digest]
    assert not stored(registry, digest)


def _send_head(registry, sock: socket.socket, token: str, data: bytes) -> None:
    path = IMAGES.format(c="lab", n="slow") + f"?digest={digest_of(data)}&tag=latest"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode())


def _wait_for_upload(registry) -> None:
    uploads = registry.context.store.uploads_dir
    deadline = time.monotonic() + 10
    while not any(uploads.iterdir()):
        assert time.monotonic() < deadline, "the upload never started"
        time.sleep(0.02)


def test_upload_in_flight_survives_gc(registry, alice):
    data = os.urandom(1 << 20)
    token = alice.headers["Authorization"].split()[1]
    parts = urlsplit(registry.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        _send_head(registry, sock, token, data)
        sock.sendall(data[: len(data) // 2])
        _wait_for_upload(registry)
        report = collect(registry, grace=dt.timedelta(0))
        assert (report.removed, report.uploads_reaped) == ([], 0)
        sock.sendall(data[len(data) // 2 :])
        status = sock.makefile("rb").readline()
    assert status.startswith(b"HTTP/1.1 201"), status
    assert registry.client().get(IMAGES.format(c="lab", n="slow") + "/latest/file").content == data
    assert collect(registry, grace=dt.timedelta(0)).removed == []
    assert stored(registry, digest_of(data))


def test_pushing_an_old_blob_again_makes_it_young(registry, alice):
    data = os.urandom(6000)
    digest = digest_of(data)
    push(alice, data)
    age_blob(registry, digest, 48 * HOUR)
    delete_image(alice, digest)

    push(alice, data)
    assert registry.context.store.stat(digest).modified > dt.datetime.now(dt.UTC).replace(tzinfo=None) - HOUR
    delete_image(alice, digest)
    report = collect(registry, grace=HOUR)
    assert (report.removed, report.kept_in_grace) == ([], 1)
    assert stored(registry, digest)


def test_admin_gc_command(registry, alice):
    data = os.urandom(7000)
    digest = digest_of(data)
    push(alice, data)
    delete_image(alice, digest)
    base = ("admin", "gc", "--data-dir", str(registry.data_dir), "--db-url", registry.db_url, "--grace-hours", "0")

    dry = run_cli(*base, "--dry-run").stdout
    assert f"would remove 1 blobs ({len(data)} bytes)" in dry
    assert digest in dry
    assert stored(registry, digest)
    assert gc_events(registry) == []

    real = run_cli(*base).stdout
    assert f"removed 1 blobs ({len(data)} bytes)" in real
    assert digest in real
    assert not stored(registry, digest)
    assert blob_row(registry, digest) is None
    assert gc_events(registry) == [{"removed": 1, "freed": len(data)}]
