"""A library multipart upload whose parts reach different registries on one database and one bucket.

Each registry has its own S3 store and its own running hashes, as separate processes would: the whole
file's hash travels in the upload's marker in the bucket, so the completion (on a registry that saw only
some parts) verifies the digest without reading a byte back. A part that skips ahead is refused (409) and
the upload goes on; a part cut halfway can be sent again.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sregistry_jupyter.registry.orm import UploadSession
from sregistry_jupyter.registry.storage.s3 import S3BlobStore
from tests.conftest import LiveRegistry, open_context, start_in_thread, wait_for
from tests.registry.s3_support import bucket_contents, empty_bucket, make_s3_store, moto_process_endpoint, new_bucket

__all__ = ["moto_process_endpoint"]

PART = 5 << 20


@pytest.fixture
def bucket(moto_process_endpoint: str) -> Iterator[str]:
    name = new_bucket(moto_process_endpoint)
    try:
        yield name
    finally:
        empty_bucket(moto_process_endpoint, name)


@pytest.fixture
def registries(db_url: str, tmp_path: Path, moto_process_endpoint: str, bucket: str) -> Iterator[list[LiveRegistry]]:
    """Two registries sharing the database, the bucket and the secret key, and nothing else."""
    started = []
    for name in ("a", "b"):
        store = make_s3_store(moto_process_endpoint, bucket, prefix="reg/")
        context = open_context(db_url, tmp_path / name, store=store, multipart_part_size=PART)
        url, stop = start_in_thread(context)
        started.append((LiveRegistry(url, context, tmp_path / name, db_url), stop))
    try:
        yield [live for live, _ in started]
    finally:
        for live, stop in started:
            for client in live.clients:
                client.close()
            stop()


def start_multipart(api: httpx.Client, data: bytes) -> tuple[str, str]:
    """Create an image in a new container and start its multipart upload; returns (image id, upload id)."""
    seed = os.urandom(1000)
    pushed = api.post(
        "/api/v1/collections/lab/containers/big/images",
        params={"digest": "sha256." + hashlib.sha256(seed).hexdigest(), "tag": "seed"},
        content=seed,
    )
    assert pushed.status_code == 201, pushed.text
    container_id = api.get("/v1/containers/alice/lab/big").json()["data"]["id"]
    digest = "sha256." + hashlib.sha256(data).hexdigest()
    created = api.post("/v1/images", content=json.dumps({"hash": digest, "container": container_id}))
    image_id = created.json()["data"]["id"]
    started = api.post(f"/v2/imagefile/{image_id}/_multipart", content=json.dumps({"filesize": len(data)}))
    assert started.status_code == 200, started.text
    assert started.json()["data"]["partSize"] == PART
    return image_id, started.json()["data"]["uploadID"]


def part_url(api: httpx.Client, image_id: str, upload_id: str, number: int, size: int) -> str:
    body = {"uploadID": upload_id, "partNumber": number, "partSize": size}
    asked = api.put(f"/v2/imagefile/{image_id}/_multipart", content=json.dumps(body))
    assert asked.status_code == 200, asked.text
    return asked.json()["data"]["presignedURL"]


def cut_put(url: str, data: bytes, sent: int) -> None:
    """PUT ``data`` to ``url`` but hang up after ``sent`` bytes of the body."""
    parts = httpx.URL(url)
    with socket.create_connection((parts.host, parts.port)) as sock:
        target = parts.raw_path.decode()
        sock.sendall(f"PUT {target} HTTP/1.1\r\nHost: {parts.host}\r\nContent-Length: {len(data)}\r\n\r\n".encode())
        sock.sendall(data[:sent])


def test_parts_through_two_registries_complete_on_either_with_the_right_digest(registries):
    a, b = registries
    token = a.add_user("alice", scope="write")
    api_a, api_b = a.client(token), b.client(token)
    data = os.urandom(2 * PART + 123_456)
    spans = [(1, data[:PART]), (2, data[PART : 2 * PART]), (3, data[2 * PART :])]
    image_id, upload_id = start_multipart(api_a, data)

    tokens = {}
    first = httpx.put(part_url(api_a, image_id, upload_id, 1, PART), content=spans[0][1])
    tokens[1] = first.headers["ETag"]
    ahead = httpx.put(part_url(api_b, image_id, upload_id, 3, len(spans[2][1])), content=spans[2][1])
    assert ahead.status_code == 409, ahead.text
    assert "in order" in ahead.json()["error"]["message"]
    url_b = part_url(api_b, image_id, upload_id, 2, PART)
    cut_put(url_b, spans[1][1], PART // 2)

    def sent_again() -> bool:
        again = httpx.put(url_b, content=spans[1][1])
        tokens[2] = again.headers.get("ETag", "")
        return again.status_code == 200

    assert wait_for(sent_again, 20)
    third = httpx.put(part_url(api_b, image_id, upload_id, 3, len(spans[2][1])), content=spans[2][1])
    assert third.status_code == 200, third.text
    tokens[3] = third.headers["ETag"]

    completed = [{"partNumber": n, "token": t} for n, t in tokens.items()]
    with a.session() as session:
        assert session.get(UploadSession, upload_id).state == "open"
    done = api_a.put(
        f"/v2/imagefile/{image_id}/_multipart_complete",
        content=json.dumps({"uploadID": upload_id, "completedParts": completed}),
    )

    assert done.status_code == 200, done.text
    digest = "sha256." + hashlib.sha256(data).hexdigest()
    store: S3BlobStore = a.context.store
    contents = bucket_contents(store)
    assert contents["multipart"] == [] and store.blob_key(digest) in contents["objects"]
    assert not [k for k in contents["objects"] if "/uploads/" in k]
    pulled = b.client().get(f"/api/v1/collections/lab/containers/big/images/{digest}/file")
    assert pulled.status_code == 200 and pulled.content == data
