"""Uploads and downloads through the native API: streaming, verification, ranges, atomicity."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest

from sregistry_jupyter.registry.orm import Blob, Image
from tests.conftest import blobs_on_disk, uploads_on_disk, wait_for

IMAGES = "/api/v1/collections/{c}/containers/{n}/images"


def digest_of(data: bytes) -> str:
    return "sha256." + hashlib.sha256(data).hexdigest()


def push(
    client: httpx.Client,
    data: bytes,
    collection: str = "lab",
    container: str = "tool",
    tags: tuple[str, ...] = ("latest",),
    digest: str | None = None,
    **params,
) -> httpx.Response:
    query = {"digest": digest or digest_of(data), "tag": list(tags), **params}
    return client.post(IMAGES.format(c=collection, n=container), params=query, content=data)


@pytest.fixture
def alice(registry):
    return registry.client(registry.add_user("alice"))


def test_push_then_pull_returns_identical_bytes(registry, alice):
    data = os.urandom(3 << 20) + b"tail"
    response = push(alice, data, tags=("latest", "v1"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["digest"] == digest_of(data)
    assert body["size"] == len(data)
    assert body["tags"] == ["latest", "v1"]
    pulled = registry.client().get(IMAGES.format(c="lab", n="tool") + "/v1/file")
    assert pulled.status_code == 200
    assert pulled.content == data
    assert pulled.headers["ETag"] == f'"{digest_of(data)}"'
    assert pulled.headers["Accept-Ranges"] == "bytes"


def test_wrong_digest_is_refused_and_leaves_nothing(registry, alice):
    data = os.urandom(100_000)
    wrong = digest_of(b"something else")
    response = push(alice, data, digest=wrong)
    assert response.status_code == 400
    assert response.json()["code"] == "DIGEST_INVALID"
    assert blobs_on_disk(registry) == []
    assert uploads_on_disk(registry) == []
    assert registry.client().get("/api/v1/collections/lab").status_code == 404


def test_declared_size_that_disagrees_with_the_body_is_refused(registry, alice):
    data = os.urandom(1000)
    for size in (999, 1001, 0):
        response = push(alice, data, size=size)
        assert response.status_code == 400, (size, response.text)
        assert response.headers["Content-Type"].startswith("application/json")
        assert set(response.json()) == {"code", "message"}
    assert blobs_on_disk(registry) == []
    assert wait_for(lambda: uploads_on_disk(registry) == [])
    assert registry.client().get("/api/v1/collections/lab").status_code == 404


@pytest.mark.parametrize(
    ("range_header", "expected"),
    [
        ("bytes=0-0", (0, 0)),
        ("bytes=0-1024", (0, 1024)),
        ("bytes=9999-9999", (9999, 9999)),
        ("bytes=9990-", (9990, 9999)),
        ("bytes=-1", (9999, 9999)),
        ("bytes=-25", (9975, 9999)),
        ("bytes=-20000", (0, 9999)),
        ("bytes=5000-999999", (5000, 9999)),
    ],
)
def test_ranges_are_exact(registry, alice, range_header, expected):
    data = os.urandom(10_000)
    assert push(alice, data).status_code == 201
    response = registry.client().get(IMAGES.format(c="lab", n="tool") + "/latest/file", headers={"Range": range_header})
    first, last = expected
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/10000"
    assert response.content == data[first : last + 1]


@pytest.mark.parametrize(
    "range_header",
    [
        "bytes=10000-",
        "bytes=10000-10005",
        "bytes=20-10",
        "bytes=-0",
        "bytes=0-1,5-6",
        "bytes=abc",
        "bytes=-",
        "bytes=99999999999999999999-",
    ],
)
def test_unsatisfiable_ranges_are_416(registry, alice, range_header):
    data = os.urandom(10_000)
    assert push(alice, data).status_code == 201
    response = registry.client().get(IMAGES.format(c="lab", n="tool") + "/latest/file", headers={"Range": range_header})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */10000"


def test_head_and_conditional_get(registry, alice):
    data = os.urandom(5000)
    assert push(alice, data).status_code == 201
    anon = registry.client()
    url = IMAGES.format(c="lab", n="tool") + f"/{digest_of(data)}/file"
    head = anon.head(url)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "5000"
    assert head.headers["ETag"] == f'"{digest_of(data)}"'
    assert head.headers["Accept-Ranges"] == "bytes"
    assert head.content == b""
    cached = anon.get(url, headers={"If-None-Match": f'"{digest_of(data)}"'})
    assert cached.status_code == 304
    assert cached.content == b""


def test_concurrent_pushes_of_the_same_bytes_store_one_blob(registry):
    tokens = [registry.add_user("alice") for _ in range(4)]
    data = os.urandom(2 << 20)

    def one(i: int) -> int:
        with httpx.Client(
            base_url=registry.url, headers={"Authorization": f"Bearer {tokens[i]}"}, timeout=60
        ) as client:
            return push(client, data, tags=(f"t{i}",)).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(one, range(4)))
    assert statuses == [201] * 4
    assert blobs_on_disk(registry) == [digest_of(data)[7:]]
    with registry.session() as session:
        assert session.query(Blob).count() == 1
        assert session.query(Image).count() == 1
    tags = registry.client().get("/api/v1/collections/lab/containers/tool/tags").json()["items"]
    assert sorted(t["name"] for t in tags) == ["t0", "t1", "t2", "t3"]


def test_identical_image_in_two_containers_is_stored_once(registry, alice):
    data = os.urandom(50_000)
    assert push(alice, data, container="one").status_code == 201
    assert push(alice, data, container="two").status_code == 201
    assert blobs_on_disk(registry) == [digest_of(data)[7:]]


def _cut_upload(url: str, path: str, token: str, declared: int, sent: bytes) -> None:
    """Send a request that declares ``declared`` bytes, send fewer, and hang up."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Length: {declared}\r\n\r\n"
        )
        sock.sendall(head.encode() + sent)
        time.sleep(0.3)


def test_connection_cut_mid_upload_leaves_nothing_and_keeps_the_old_tag(registry, alice):
    old = os.urandom(20_000)
    assert push(alice, old).status_code == 201
    new = os.urandom(8 << 20)
    token = alice.headers["Authorization"].split()[1]
    path = IMAGES.format(c="lab", n="tool") + f"?digest={digest_of(new)}&tag=latest"
    _cut_upload(registry.url, path, token, len(new), new[: 3 << 20])
    assert wait_for(lambda: uploads_on_disk(registry) == [])
    assert blobs_on_disk(registry) == [digest_of(old)[7:]]
    pulled = registry.client().get(IMAGES.format(c="lab", n="tool") + "/latest/file")
    assert pulled.content == old
    with registry.session() as session:
        assert session.query(Image).count() == 1


def test_upload_larger_than_the_limit_is_refused_before_the_body(db_url, tmp_path):
    from tests.conftest import LiveRegistry, open_context, start_in_thread

    context = open_context(db_url, tmp_path / "d", max_upload_size=1000)
    url, stop = start_in_thread(context)
    try:
        live = LiveRegistry(url, context, tmp_path / "d", db_url)
        client = live.client(live.add_user("alice"))
        response = push(client, os.urandom(1001))
        assert response.status_code == 413
        token = client.headers["Authorization"].split()[1]
        parts = urlsplit(url)
        path = IMAGES.format(c="lab", n="big") + f"?digest={digest_of(b'x')}"
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
            sock.sendall(
                (
                    f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
                    f"Content-Length: {10**12}\r\n\r\n"
                ).encode()
            )
            reply = sock.recv(100)
        assert reply.startswith(b"HTTP/1.1 413"), reply
        assert blobs_on_disk(live) == [] and uploads_on_disk(live) == []
        assert push(client, os.urandom(1000)).status_code == 201
    finally:
        stop()
        context.engine.dispose()


def test_slow_upload_does_not_block_other_requests(registry, alice):
    token = alice.headers["Authorization"].split()[1]
    data = os.urandom(1 << 20)
    parts = urlsplit(registry.url)
    path = IMAGES.format(c="lab", n="slow") + f"?digest={digest_of(data)}"
    done = threading.Event()

    def slow() -> None:
        with socket.create_connection((parts.hostname, parts.port)) as sock:
            sock.sendall(
                (
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n"
                ).encode()
            )
            for i in range(0, len(data), 1 << 18):
                sock.sendall(data[i : i + (1 << 18)])
                time.sleep(0.2)
            reply = sock.recv(100)
            assert reply.startswith(b"HTTP/1.1 201")
            done.set()

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    assert registry.client().get("/api/v1/collections").status_code == 200
    assert time.monotonic() - started < 0.5
    thread.join(30)
    assert done.is_set()
