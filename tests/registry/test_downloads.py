"""One download path for every surface: the native file URL, share links, shub's signed links and the
library's ``/v1/blobs`` redirect target honour ``Range``, ``If-Range``, ``If-None-Match`` and ``HEAD``
alike, with the digest as ETag; and pulls keep working when the bookkeeping cannot be written."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from sregistry_jupyter.registry import bookkeeping

IMAGES = "/api/v1/collections/lab/containers/tool/images"


@pytest.fixture
def pushed(registry) -> tuple[httpx.Client, bytes, str]:
    alice = registry.client(registry.add_user("alice", scope="admin"))
    data = os.urandom(100_000)
    digest = "sha256." + hashlib.sha256(data).hexdigest()
    response = alice.post(IMAGES, params={"digest": digest, "tag": "latest"}, content=data)
    assert response.status_code == 201, response.text
    return alice, data, digest


def surface_url(registry, alice: httpx.Client, surface: str) -> tuple[httpx.Client, str]:
    """A client and the URL that downloads the pushed image through ``surface``."""
    anonymous = registry.client()
    if surface == "native":
        return alice, f"{IMAGES}/latest/file"
    if surface == "share":
        share = alice.post(f"{IMAGES}/latest/shares", json={"days": 1})
        assert share.status_code == 201, share.text
        return anonymous, share.json()["path"]
    if surface == "shub":
        return anonymous, alice.get("/api/container/lab/tool:latest").json()["image"]
    redirect = alice.get("/v1/imagefile/lab/tool:latest", follow_redirects=False)
    assert redirect.status_code == 303, redirect.text
    return anonymous, redirect.headers["Location"]


@pytest.mark.parametrize("surface", ["native", "share", "shub", "library"])
def test_every_surface_honours_ranges_validators_and_head(registry, pushed, surface):
    alice, data, digest = pushed
    client, url = surface_url(registry, alice, surface)
    etag = f'"{digest}"'

    whole = client.get(url)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["ETag"] == etag and whole.headers["Accept-Ranges"] == "bytes"

    head = client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(data)) and head.headers["ETag"] == etag

    part = client.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"

    current = client.get(url, headers={"Range": "bytes=-10", "If-Range": etag})
    assert current.status_code == 206 and current.content == data[-10:]
    changed = client.get(url, headers={"Range": "bytes=-10", "If-Range": '"sha256.other"'})
    assert changed.status_code == 200 and changed.content == data

    cached = client.get(url, headers={"If-None-Match": f'"sha256.other", {etag}'})
    assert cached.status_code == 304 and cached.content == b""
    assert client.get(url, headers={"If-None-Match": "*"}).status_code == 304

    outside = client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert outside.status_code == 416
    assert outside.headers["Content-Range"] == f"bytes */{len(data)}"


def test_pulls_keep_working_when_the_bookkeeping_cannot_be_written(registry, pushed, monkeypatch):
    alice, data, _ = pushed

    def disk_full(*_args, **_kwargs):
        raise OperationalError("UPDATE counters", {}, Exception("database or disk is full"))

    monkeypatch.setattr(bookkeeping, "write_pending", disk_full)
    for surface in ("native", "share", "shub", "library"):
        client, url = surface_url(registry, alice, surface)
        for _ in range(2):
            response = client.get(url)
            assert response.status_code == 200 and response.content == data, surface
        registry.flush()
    monkeypatch.undo()
    registry.flush()
    listed = alice.get(IMAGES).json()["items"]
    assert listed[0]["downloads"] >= 4
