"""Garbage collection of abandoned uploads, by their own age and state, on both databases: what a
crashed process left is reported (``--dry-run`` too) and removed; live and paused uploads are kept; each
removal is committed on its own."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import signal
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from sregistry_jupyter.registry.orm import Blob, UploadSession, utcnow
from sregistry_jupyter.registry.services import gc
from tests.conftest import run_cli, uploads_on_disk

HOUR = dt.timedelta(hours=1)
TUS = {"Tus-Resumable": "1.0.0"}


def digest_of(data: bytes) -> str:
    return "sha256." + hashlib.sha256(data).hexdigest()


def back_date(path, age: dt.timedelta) -> None:
    when = time.time() - age.total_seconds()
    os.utime(path, (when, when))


def collect(registry, **kwargs) -> gc.GcReport:
    with registry.session() as session:
        return gc.collect(session, registry.context.store, **kwargs)


def tus_upload(api: httpx.Client, data: bytes, sent: int) -> str:
    meta = ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}"
        for k, v in {"collection": "lab", "container": "tool", "digest": digest_of(data)}.items()
    )
    created = api.post("/api/v1/uploads", headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": meta})
    url = created.headers["Location"]
    headers = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    assert api.patch(url, headers=headers, content=data[:sent]).status_code == 204
    return url.rsplit("/", 1)[1]


def set_session(registry, upload_id: str, **values) -> None:
    with registry.session() as session:
        upload = session.get(UploadSession, upload_id)
        for name, value in values.items():
            setattr(upload, name, value)
        session.commit()


def test_a_crashed_writers_leftover_is_reported_then_removed_and_a_live_one_kept(registry):
    store = registry.context.store
    crashed = store.writer()
    crashed.write(os.urandom(5000))
    back_date(crashed._tmp, 2 * HOUR)
    live = store.writer()
    live.write(b"still arriving")

    dry = collect(registry, dry_run=True)
    assert [(u.upload_id, u.size) for u in dry.uploads] == [(crashed._tmp.stem, 5000)]
    assert "no bytes written since" in dry.uploads[0].reason
    assert len(uploads_on_disk(registry)) == 2

    real = collect(registry)
    assert [u.upload_id for u in real.uploads] == [crashed._tmp.stem]
    assert uploads_on_disk(registry) == [live._tmp.name]
    live.cancel()


def test_upload_sessions_are_judged_by_their_state_and_expiry(registry):
    api = registry.client(registry.add_user("alice", scope="write"))
    data = os.urandom(10_000)
    paused = tus_upload(api, data, 3000)
    expired = tus_upload(api, os.urandom(10_001), 3000)
    aborted = tus_upload(api, os.urandom(10_002), 3000)
    long_ago = utcnow() - 3 * HOUR
    set_session(registry, paused, updated_at=long_ago)
    set_session(registry, expired, updated_at=long_ago, expires_at=long_ago)
    set_session(registry, aborted, state="aborted", updated_at=long_ago)
    for path in registry.context.store.uploads_dir.iterdir():
        back_date(path, 3 * HOUR)

    report = collect(registry)
    assert sorted((u.upload_id, u.reason) for u in report.uploads) == sorted(
        [(expired, "expired"), (aborted, "aborted")]
    )
    assert report.live_uploads == 1 and report.sessions_removed == 2
    with registry.session() as session:
        assert sorted(session.scalars(select(UploadSession.id))) == [paused]
    assert uploads_on_disk(registry) == [f"{paused}.assembly"]
    resumed = api.patch(
        f"/api/v1/uploads/{paused}",
        headers={**TUS, "Upload-Offset": "3000", "Content-Type": "application/offset+octet-stream"},
        content=data[3000:],
    )
    assert resumed.status_code == 204
    deadline = time.monotonic() + 30
    while api.get(f"/api/v1/uploads/{paused}", headers=TUS).json()["state"] != "done":
        assert time.monotonic() < deadline, "the resumed upload was never recorded"
        time.sleep(0.05)


def test_each_removal_is_committed_on_its_own(registry, monkeypatch):
    api = registry.client(registry.add_user("alice", scope="write"))
    digests = []
    for size in (1000, 2000):
        data = os.urandom(size)
        api.post("/api/v1/collections/lab/containers/tool/images", params={"digest": digest_of(data)}, content=data)
        assert api.delete(f"/api/v1/collections/lab/containers/tool/images/{digest_of(data)}").status_code == 204
        back_date(registry.context.store.path_for(digest_of(data)), 2 * HOUR)
        digests.append(digest_of(data))
    store = registry.context.store
    original = store.delete
    calls = []

    def fails_second(digest: str) -> bool:
        calls.append(digest)
        if len(calls) == 2:
            raise OSError("the disk went away")
        return original(digest)

    monkeypatch.setattr(store, "delete", fails_second)
    with pytest.raises(OSError):
        collect(registry)
    with registry.session() as session:
        rows = set(session.scalars(select(Blob.digest)))
    assert calls[0] not in rows and calls[1] in rows


def test_admin_gc_reports_an_upload_cut_by_sigkill(serve, tmp_path):
    server = serve()
    server.admin("create-user", "alice", "--terms-accepted")
    token = server.admin("create-token", "alice").strip().splitlines()[-1]
    data = os.urandom(8 << 20)
    parts = urlsplit(server.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    path = f"/api/v1/collections/lab/containers/tool/images?digest={digest_of(data)}"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data[: 5 << 20])
    uploads = server.data_dir / "storage" / "uploads"
    deadline = time.monotonic() + 10
    while not any(p.stat().st_size for p in uploads.iterdir()):
        assert time.monotonic() < deadline, "the upload never reached the disk"
        time.sleep(0.05)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    sock.close()
    [leftover] = list(uploads.iterdir())

    base = ("admin", "gc", "--data-dir", str(server.data_dir), "--upload-idle-hours", "0")
    dry = run_cli(*base, "--dry-run").stdout
    assert "would remove 1 abandoned uploads" in dry and leftover.stem in dry
    assert leftover.exists()
    real = run_cli(*base).stdout
    assert "removed 1 abandoned uploads" in real
    assert list(uploads.iterdir()) == []
