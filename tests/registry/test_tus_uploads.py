"""tus 1.0 uploads at ``/api/v1/uploads`` (core, creation, termination) on both databases: resumable
after a cut connection, verified whole before the image appears, owned by their creator, capped."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from sregistry_jupyter.registry.auth.local import LocalAuthenticator
from sregistry_jupyter.registry.orm import UploadSession
from sregistry_jupyter.registry.services.uploads import UploadLimits
from tests.conftest import blobs_on_disk, open_context, start_in_thread, uploads_on_disk, wait_for
from tests.registry.test_sign_in import add_person, signed_in, xsrf_of

TUS = {"Tus-Resumable": "1.0.0"}
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}


@pytest.fixture
def alice(registry) -> httpx.Client:
    return registry.client(registry.add_user("alice", scope="write"))


@pytest.fixture
def bob(registry) -> httpx.Client:
    return registry.client(registry.add_user("bob", scope="write"))


def digest_of(data: bytes) -> str:
    return "sha256." + hashlib.sha256(data).hexdigest()


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def create(api: httpx.Client, data: bytes, *, digest: str | None = None, tags: str = "v1,latest") -> str:
    meta = metadata(collection="lab", container="tool", tags=tags, digest=digest or digest_of(data), filename="x.sif")
    created = api.post("/api/v1/uploads", headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": meta})
    assert created.status_code == 201, created.text
    assert created.headers["Tus-Resumable"] == "1.0.0"
    return created.headers["Location"]


def patch(api: httpx.Client, url: str, data: bytes, offset: int) -> httpx.Response:
    return api.patch(url, headers={**PATCH, "Upload-Offset": str(offset)}, content=data)


def outcome(api: httpx.Client, url: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        status = api.get(url, headers=TUS).json()
        if status["state"] in ("done", "failed") or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def images(api: httpx.Client) -> list[str]:
    listed = api.get("/api/v1/collections/lab/containers/tool/images")
    return [i["digest"] for i in listed.json()["items"]] if listed.status_code == 200 else []


def test_options_advertises_version_extensions_and_max_size(registry):
    answer = registry.client().options("/api/v1/uploads")
    assert answer.status_code == 204
    assert answer.headers["Tus-Version"] == "1.0.0"
    assert set(answer.headers["Tus-Extension"].split(",")) == {"creation", "termination"}
    assert int(answer.headers["Tus-Max-Size"]) == registry.context.max_upload_size


def test_an_upload_in_two_patches_becomes_the_image_only_once_verified(registry, alice):
    data = os.urandom(300_000)
    url = create(alice, data)
    first = patch(alice, url, data[:100_000], 0)
    assert first.status_code == 204 and first.headers["Upload-Offset"] == "100000"
    head = alice.head(url, headers=TUS)
    assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == ("100000", "300000")
    assert alice.get(url, headers=TUS).json()["state"] == "receiving"
    assert images(alice) == []
    last = patch(alice, url, data[100_000:], 100_000)
    assert last.status_code == 204 and last.headers["Upload-Offset"] == "300000"
    status = outcome(alice, url)
    assert status["state"] == "done", status
    assert status["image"]["digest"] == digest_of(data)
    assert alice.get("/api/v1/collections/lab/containers/tool/images/v1/file").content == data
    assert uploads_on_disk(registry) == []


def test_an_offset_that_is_not_the_uploads_end_is_a_409(registry, alice):
    data = os.urandom(10_000)
    url = create(alice, data)
    assert patch(alice, url, data[:4000], 0).status_code == 204
    conflict = patch(alice, url, data[2000:], 2000)
    assert conflict.status_code == 409
    assert "4000" in conflict.json()["message"]
    assert alice.head(url, headers=TUS).headers["Upload-Offset"] == "4000"
    assert patch(alice, url, data[4000:], 4000).status_code == 204
    assert outcome(alice, url)["state"] == "done"


def test_a_patch_cut_midway_keeps_what_arrived_and_resumes(registry, alice):
    data = os.urandom(2 << 20)
    url = create(alice, data)
    token = alice.headers["Authorization"]
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        head = (
            f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: {token}\r\n"
            f"Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Upload-Offset: 0\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        sock.sendall(head.encode() + data[: 1 << 20])
        time.sleep(0.5)
    upload_id = parts.path.rsplit("/", 1)[1]

    def settled() -> bool:
        with registry.session() as session:
            return session.get(UploadSession, upload_id).writers == 0

    assert wait_for(settled)
    offset = int(alice.head(url, headers=TUS).headers["Upload-Offset"])
    assert 0 < offset <= 1 << 20
    assert images(alice) == []
    assert patch(alice, url, data[offset:], offset).status_code == 204
    status = outcome(alice, url)
    assert status["state"] == "done", status
    assert alice.get("/api/v1/collections/lab/containers/tool/images/v1/file").content == data


def test_bytes_that_do_not_match_the_digest_fail_and_leave_nothing(registry, alice):
    data = os.urandom(5000)
    url = create(alice, data, digest=digest_of(b"something else"))
    assert patch(alice, url, data, 0).status_code == 204
    status = outcome(alice, url)
    assert status["state"] == "failed" and "digest" in status["error"]
    assert status["image"] is None
    assert images(alice) == []
    assert blobs_on_disk(registry) == [] and uploads_on_disk(registry) == []


def test_termination_leaves_nothing(registry, alice):
    data = os.urandom(50_000)
    url = create(alice, data)
    assert patch(alice, url, data[:20_000], 0).status_code == 204
    assert alice.delete(url, headers=TUS).status_code == 204
    assert uploads_on_disk(registry) == [] and blobs_on_disk(registry) == []
    assert patch(alice, url, data[20_000:], 20_000).status_code == 404
    assert alice.get(url, headers=TUS).json()["state"] == "failed"
    assert images(alice) == []


def test_an_upload_belongs_to_its_creator(registry, alice, bob):
    data = os.urandom(1000)
    url = create(alice, data)
    for answer in (
        bob.head(url, headers=TUS),
        bob.get(url, headers=TUS),
        patch(bob, url, data, 0),
        bob.delete(url, headers=TUS),
    ):
        assert answer.status_code == 404
    assert registry.client().get(url, headers=TUS).status_code == 401
    assert patch(alice, url, data, 0).status_code == 204
    assert outcome(alice, url)["state"] == "done"


def test_a_push_the_creator_may_not_make_is_refused_at_creation(registry, alice, bob):
    assert alice.post("/api/v1/collections", json={"name": "lab"}).status_code == 201
    meta = metadata(collection="lab", container="tool", digest=digest_of(b"x"))
    refused = bob.post("/api/v1/uploads", headers={**TUS, "Upload-Length": "1", "Upload-Metadata": meta})
    assert refused.status_code == 409 and "taken" in refused.json()["message"]


def test_uploads_past_the_quota_and_bad_requests_are_clear_4xx(registry, alice):
    registry.context.upload_limits = UploadLimits(max_open=1, max_bytes=1 << 30)
    create(alice, b"first")
    meta = metadata(collection="lab", container="tool", digest=digest_of(b"second"))
    refused = alice.post("/api/v1/uploads", headers={**TUS, "Upload-Length": "6", "Upload-Metadata": meta})
    assert refused.status_code == 403 and refused.json()["code"] == "UPLOAD_QUOTA"
    assert "1 uploads in progress" in refused.json()["message"]
    no_version = alice.post("/api/v1/uploads", headers={"Upload-Length": "6", "Upload-Metadata": meta})
    assert no_version.status_code == 412 and no_version.headers["Tus-Version"] == "1.0.0"
    bad_length = alice.post("/api/v1/uploads", headers={**TUS, "Upload-Length": "x", "Upload-Metadata": meta})
    assert bad_length.status_code == 400
    bad_meta = alice.post("/api/v1/uploads", headers={**TUS, "Upload-Length": "6", "Upload-Metadata": "digest !!"})
    assert bad_meta.status_code == 400


@pytest.mark.parametrize("registry_settings", [{"authenticator": LocalAuthenticator()}])
def test_the_web_pages_upload_with_their_session_and_xsrf_header(registry):
    add_person(registry, "alice")
    page = signed_in(registry, "alice")
    data = os.urandom(3000)
    meta = metadata(collection="lab", container="tool", digest=digest_of(data))
    headers = {**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": meta}
    assert page.post("/api/v1/uploads", headers=headers).status_code == 403
    created = page.post("/api/v1/uploads", headers={**headers, "X-XSRF-Token": xsrf_of(page)})
    assert created.status_code == 201, created.text
    url = created.headers["Location"]
    bare = page.patch(url, headers={**PATCH, "Upload-Offset": "0"}, content=data)
    assert bare.status_code == 403
    sent = page.patch(url, headers={**PATCH, "Upload-Offset": "0", "X-XSRF-Token": xsrf_of(page)}, content=data)
    assert sent.status_code == 204
    assert outcome(page, url)["state"] == "done"


def test_an_upload_goes_on_at_another_process(registry, alice):
    other = open_context(registry.db_url, registry.data_dir)
    other_url, stop = start_in_thread(other)
    try:
        data = os.urandom(200_000)
        url = create(alice, data)
        assert patch(alice, url, data[:80_000], 0).status_code == 204
        elsewhere = url.replace(registry.url, other_url)
        assert alice.head(elsewhere, headers=TUS).headers["Upload-Offset"] == "80000"
        assert patch(alice, elsewhere, data[80_000:], 80_000).status_code == 204
        status = outcome(alice, url)
        assert status["state"] == "done", status
        assert alice.get("/api/v1/collections/lab/containers/tool/images/v1/file").content == data
    finally:
        stop()
