"""Library multipart upload sessions under attack and load, on both databases: no write reaches a
published blob, a completion never hashes what never arrived, open sessions are capped per user, and
heavy completions never starve a small push."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from sregistry_jupyter.registry.orm import UploadPart, UploadSession
from sregistry_jupyter.registry.services.uploads import RunningHashes, UploadLimits
from sregistry_jupyter.registry.storage import FilesystemBlobStore

PART = 1 << 20
NATIVE = "/api/v1/collections/{c}/containers/{n}"


@pytest.fixture
def registry_settings() -> dict:
    return {"multipart_part_size": PART}


@pytest.fixture
def alice(registry) -> httpx.Client:
    return registry.client(registry.add_user("alice", scope="write"))


def digest_of(data: bytes) -> str:
    return "sha256." + hashlib.sha256(data).hexdigest()


@dataclass
class Multipart:
    """One library multipart upload, driven step by step as the library client would."""

    api: httpx.Client
    image_id: str
    upload_id: str
    total: int
    data: bytes

    def part_url(self, number: int) -> str:
        length = len(self.part(number))
        asked = self.api.put(
            f"/v2/imagefile/{self.image_id}/_multipart",
            content=json.dumps({"uploadID": self.upload_id, "partNumber": number, "partSize": length}),
        )
        assert asked.status_code == 200, asked.text
        return asked.json()["data"]["presignedURL"]

    def part(self, number: int) -> bytes:
        return self.data[(number - 1) * PART : number * PART]

    def send(self, number: int) -> str:
        sent = httpx.put(self.part_url(number), content=self.part(number))
        assert sent.status_code == 200, sent.text
        return sent.headers["ETag"]

    def complete(self, tokens: dict[int, str]) -> httpx.Response:
        parts = [{"partNumber": n, "token": t} for n, t in sorted(tokens.items())]
        body = {"uploadID": self.upload_id, "completedParts": parts}
        return self.api.put(f"/v2/imagefile/{self.image_id}/_multipart_complete", content=json.dumps(body))


def container_id(api: httpx.Client, container: str = "tool") -> str:
    seed = os.urandom(100)
    api.post(NATIVE.format(c="lab", n=container) + "/images", params={"digest": digest_of(seed)}, content=seed)
    return api.get(f"/v1/containers/alice/lab/{container}").json()["data"]["id"]


def start(api: httpx.Client, data: bytes, *, size: int | None = None, container: str = "tool") -> Multipart:
    created = api.post(
        "/v1/images", content=json.dumps({"hash": digest_of(data), "container": container_id(api, container)})
    )
    assert created.status_code == 200, created.text
    image_id = created.json()["data"]["id"]
    started = api.post(f"/v2/imagefile/{image_id}/_multipart", content=json.dumps({"filesize": size or len(data)}))
    assert started.status_code == 200, started.text
    body = started.json()["data"]
    return Multipart(api, image_id, body["uploadID"], body["totalParts"], data)


def library_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == status, body
    return body["error"]["message"]


def stored_bytes(registry, digest: str) -> bytes | None:
    store = registry.context.store
    return b"".join(store.read(digest)) if store.stat(digest) is not None else None


def held_put(url: str, length: int) -> socket.socket:
    """A PUT to ``url`` whose headers are sent and whose body is not (yet)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    head = f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {length}\r\n\r\n"
    sock.sendall(head.encode())
    return sock


def open_writers(registry, upload_id: str) -> int:
    with registry.session() as session:
        return session.get(UploadSession, upload_id).writers


def wait_for_writers(registry, upload_id: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while open_writers(registry, upload_id) != count:
        assert time.monotonic() < deadline, "the part never claimed its upload"
        time.sleep(0.02)


def test_a_part_whose_body_comes_after_complete_cannot_change_stored_bytes(registry, alice):
    genuine = os.urandom(2 * PART)
    upload = start(alice, genuine)
    tokens = {1: upload.send(1), 2: upload.send(2)}
    late = held_put(upload.part_url(1), PART)
    wait_for_writers(registry, upload.upload_id, 1)

    refused = library_error(upload.complete(tokens), 409)
    assert "still being received" in refused
    late.sendall(b"\0" * PART)
    assert late.makefile("rb").readline().startswith(b"HTTP/1.1 200")
    late.close()
    assert stored_bytes(registry, digest_of(genuine)) is None

    # The part was overwritten with other bytes: its old token is no longer the part's, and with the new
    # one the digest check refuses what the assembly now holds. Nothing is published either way.
    assert "token of part 1" in library_error(upload.complete(tokens), 400)
    with registry.session() as session:
        tokens[1] = '"' + session.get(UploadPart, (upload.upload_id, 1)).etag + '"'
    assert "digest" in library_error(upload.complete(tokens), 400)
    assert stored_bytes(registry, digest_of(genuine)) is None
    with registry.session() as session:
        assert session.get(UploadSession, upload.upload_id).state == "failed"

    again = start(alice, genuine)
    assert again.complete({1: again.send(1), 2: again.send(2)}).status_code == 200
    assert stored_bytes(registry, digest_of(genuine)) == genuine


def test_part_urls_are_refused_once_the_upload_is_complete_and_the_blob_is_read_only(registry, alice):
    genuine = os.urandom(PART + 1000)
    upload = start(alice, genuine)
    first_url = upload.part_url(1)
    tokens = {1: upload.send(1), 2: upload.send(2)}
    assert upload.complete(tokens).status_code == 200
    assert library_error(httpx.put(first_url, content=b"\0" * PART), 404)
    assert library_error(
        alice.put(
            f"/v2/imagefile/{upload.image_id}/_multipart",
            content=json.dumps({"uploadID": upload.upload_id, "partNumber": 1, "partSize": PART}),
        ),
        404,
    )
    path = registry.context.store.path_for(digest_of(genuine))
    assert path.stat().st_mode & 0o777 == 0o444
    assert stored_bytes(registry, digest_of(genuine)) == genuine


def test_a_push_of_bytes_already_stored_replaces_a_copy_of_the_wrong_size(registry, alice):
    genuine = os.urandom(PART + 10)
    upload = start(alice, genuine, container="first")
    assert upload.complete({1: upload.send(1), 2: upload.send(2)}).status_code == 200
    path = registry.context.store.path_for(digest_of(genuine))
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    second = alice.post(
        "/v1/images", content=json.dumps({"hash": digest_of(genuine), "container": container_id(alice, "second")})
    )
    assert second.json()["data"]["uploaded"] is False
    upload = start(alice, genuine, container="second")
    assert upload.complete({1: upload.send(1), 2: upload.send(2)}).status_code == 200
    assert path.read_bytes() == genuine


def test_completing_parts_that_never_arrived_is_refused_before_any_hashing(registry, alice):
    upload = start(alice, b"x" * 100, size=4 << 30)
    tokens = {n: '"1"' for n in range(1, upload.total + 1)}
    began = time.monotonic()
    message = library_error(upload.complete(tokens), 400)
    assert time.monotonic() - began < 2
    assert "part 1 has not arrived" in message
    with registry.session() as session:
        assert session.get(UploadSession, upload.upload_id).state == "open"


def test_completed_parts_with_mixed_types_are_a_400(registry, alice):
    data = os.urandom(1000)
    upload = start(alice, data)
    token = upload.send(1)
    body = {"uploadID": upload.upload_id, "completedParts": [{"partNumber": "1", "token": token}, 7]}
    response = alice.put(f"/v2/imagefile/{upload.image_id}/_multipart_complete", content=json.dumps(body))
    assert "completedParts" in library_error(response, 400)


def test_parts_in_order_are_recorded_with_their_running_hash(registry, alice):
    data = os.urandom(3 * PART)
    upload = start(alice, data)
    tokens = {n: upload.send(n) for n in (1, 2, 3)}
    with registry.session() as session:
        parts = {p.number: p for p in session.query(UploadPart).filter_by(upload_id=upload.upload_id)}
    assert sorted(parts) == [1, 2, 3]
    assert [(parts[n].offset, parts[n].size) for n in (1, 2, 3)] == [(0, PART), (PART, PART), (2 * PART, PART)]
    for n in (1, 2, 3):
        assert parts[n].prefix_sha256 == hashlib.sha256(data[: n * PART]).hexdigest()
        assert tokens[n] == f'"{parts[n].etag}"'
    assert upload.complete(tokens).status_code == 200
    assert stored_bytes(registry, digest_of(data)) == data


def test_open_uploads_are_capped_per_user(registry, alice):
    registry.context.upload_limits = UploadLimits(max_open=2, max_bytes=10 << 30)
    start(alice, os.urandom(10))
    start(alice, os.urandom(11))
    created = alice.post(
        "/v1/images", content=json.dumps({"hash": digest_of(b"third"), "container": container_id(alice)})
    )
    image_id = created.json()["data"]["id"]
    third = alice.post(f"/v2/imagefile/{image_id}/_multipart", content=json.dumps({"filesize": 10}))
    assert "2 uploads in progress" in library_error(third, 403)
    registry.context.upload_limits = UploadLimits(max_open=10, max_bytes=1000)
    big = alice.post(f"/v2/imagefile/{image_id}/_multipart", content=json.dumps({"filesize": 2000}))
    assert "at most 1000 bytes" in library_error(big, 403)


class SlowStore(FilesystemBlobStore):
    """A store whose assemblies take seconds to read back, like multi-GB ones on a busy disk."""

    def read_assembly(self, upload_id, offset, length, chunk_size=1 << 20):
        for chunk in super().read_assembly(upload_id, offset, length, chunk_size):
            time.sleep(0.5)
            yield chunk


def test_a_small_push_is_quick_while_large_completions_are_verified(registry, alice):
    uploads = []
    for n in range(8):
        data = os.urandom(4 * PART) + bytes([n])
        upload = start(alice, data, container=f"big{n}")
        uploads.append((upload, {p: upload.send(p) for p in range(1, upload.total + 1)}))
    registry.context.store = SlowStore(root=str(registry.data_dir / "storage"))
    registry.context.hashes = RunningHashes()  # as if the parts had arrived at another process
    results: list[int] = []
    threads = [threading.Thread(target=lambda u=u, t=t: results.append(u.complete(t).status_code)) for u, t in uploads]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    small = os.urandom(1 << 20)
    began = time.monotonic()
    pushed = alice.post(
        NATIVE.format(c="lab", n="small") + "/images", params={"digest": digest_of(small)}, content=small
    )
    took = time.monotonic() - began
    assert pushed.status_code == 201, pushed.text
    assert took < 1.5, f"a 1 MiB push took {took:.1f} s behind the completions"
    for thread in threads:
        thread.join(120)
    assert results == [200] * len(uploads)
