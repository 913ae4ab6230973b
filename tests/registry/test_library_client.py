"""The library API against the real apptainer library client (container-library-client, built from
Debian's Go sources into ``tests/go/src/sregtest/libclient``), plus the bad input that client never
sends but a hostile or broken one could: malformed refs, wrong or cut uploads, bad ranges, forged links.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from sregistry_jupyter.registry.orm import Container, Event, Image, UploadSession
from sregistry_jupyter.registry.signing import sign
from tests.conftest import blobs_on_disk, uploads_on_disk, wait_for
from tests.gotools import make_sif

DEFFILE = "Bootstrap: docker\nFrom: alpine:3.19\n"
LABELS = {"org.label-schema.schema-version": "1.0"}
NATIVE = "/api/v1/collections/{c}/containers/{n}"


@pytest.fixture
def registry_settings() -> dict:
    """Small multipart parts, so the one image above the client's 64 MiB threshold arrives in three."""
    return {"multipart_part_size": 32 << 20}


@dataclass
class LibClient:
    """Runs the Go program over the real library client against one registry."""

    binary: Path
    url: str

    def run(self, command: str, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.binary), command, "-url", self.url, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "SREG_TOKEN": token or ""},
        )

    def ok(self, command: str, *args: str, token: str | None = None) -> Any:
        result = self.run(command, *args, token=token)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def fails(self, command: str, *args: str, token: str | None = None) -> str:
        result = self.run(command, *args, token=token)
        assert result.returncode == 1, result.stdout
        return result.stderr

    def push(self, sif: Path, ref: str, tags: str, token: str) -> Any:
        return self.ok("push", "-file", str(sif), "-ref", ref, "-tags", tags, token=token)


@pytest.fixture
def lib(registry, libclient_bin: Path) -> LibClient:
    return LibClient(libclient_bin, registry.url)


@pytest.fixture
def alice(registry) -> str:
    return registry.add_user("alice", scope="write")


@pytest.fixture
def bob(registry) -> str:
    return registry.add_user("bob", scope="write")


@pytest.fixture
def sif(mksif: Path, tmp_path: Path) -> Callable[..., Path]:
    """Make a real SIF: ``sif("name", size=..., seed=...)``."""

    def make(name: str, size: int = 20_000, seed: int = 1) -> Path:
        return make_sif(mksif, tmp_path / f"{name}.sif", size=size, seed=seed, deffile=DEFFILE, labels=LABELS)

    return make


def digest_of(path: Path) -> str:
    with path.open("rb") as f:
        return "sha256." + hashlib.file_digest(f, "sha256").hexdigest()


def count(registry, model: type, *where: Any) -> int:
    with registry.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def library_error(response: httpx.Response, status: int) -> str:
    """Assert ``response`` is ``status`` in the library envelope and return its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == status, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["message"]


def test_push_records_tags_and_sif_metadata_and_a_second_push_uploads_nothing(registry, lib, alice, sif):
    image = sif("demo")

    first = lib.push(image, "alice/tools/demo", "latest,v1", alice)

    assert first["result"]["containerUrl"].endswith("/collections/tools/containers/demo")
    native = registry.client().get(NATIVE.format(c="tools", n="demo") + "/images/latest").json()
    assert native["digest"] == digest_of(image)
    assert native["size"] == image.stat().st_size
    assert native["tags"] == ["latest", "v1"]
    assert native["arch"] == "amd64"
    assert native["sif"]["partitions"][0]["arch"] == "amd64"
    assert native["sif"]["partitions"][0]["parttype"] == "Primary System"
    assert native["sif"]["deffile"] == DEFFILE and native["sif"]["labels"] == LABELS
    blob = registry.data_dir / "storage" / "blobs" / "sha256" / digest_of(image)[7:9] / digest_of(image)[7:]
    stamp = blob.stat().st_mtime_ns
    assert count(registry, Event, Event.action == "push") == 1

    second = lib.push(image, "alice/tools/demo", "again", alice)

    assert second["result"] is None
    assert count(registry, Event, Event.action == "push") == 1
    assert count(registry, UploadSession) == 1
    assert blob.stat().st_mtime_ns == stamp
    tags = registry.client().get(NATIVE.format(c="tools", n="demo") + "/tags").json()["items"]
    assert sorted((t["name"], t["digest"]) for t in tags) == [
        ("again", digest_of(image)),
        ("latest", digest_of(image)),
        ("v1", digest_of(image)),
    ]
    got = lib.ok("getimage", "-ref", "alice/tools/demo:again", token=alice)
    assert got["hash"] == digest_of(image) and got["uploaded"] is True
    assert got["tags"] == ["again", "latest", "v1"] and got["arch"] == "amd64"


def test_image_above_64_mib_goes_multipart_and_pulls_back_identical(registry, lib, alice, mksif, tmp_path):
    image = make_sif(mksif, tmp_path / "big.sif", size=70 << 20, seed=7)

    lib.push(image, "alice/tools/big", "latest", alice)

    with registry.session() as session:
        upload = session.scalars(select(UploadSession)).one()
        assert (upload.kind, upload.state, upload.parts["totalParts"]) == ("multipart", "done", 3)
    assert uploads_on_disk(registry) == []
    out = tmp_path / "big.pulled.sif"
    pulled = lib.ok("pull", "-ref", "alice/tools/big:latest", "-out", str(out), "-partsize", str(16 << 20))
    assert pulled["size"] == image.stat().st_size
    assert digest_of(out) == digest_of(image) == pulled["hash"]


def test_concurrent_and_single_stream_pulls_by_every_ref_form(registry, lib, alice, sif, tmp_path):
    image = sif("demo", size=3 << 20, seed=3)
    solo = sif("solo", seed=4)
    lib.push(image, "alice/tools/demo", "latest", alice)
    lib.push(solo, "x/library/solo", "latest", alice)
    digest = digest_of(image)
    pulls = [
        ("pull", "alice/tools/demo:latest", image, None),
        ("pull", "someone/tools/demo:latest", image, alice),
        ("pull", "tools/demo:latest", image, None),
        ("pull", f"tools/demo:{digest}", image, None),
        ("pull", "solo", solo, None),
        ("pull-single", "alice/tools/demo:latest", image, alice),
        ("pull-single", f"tools/demo:{digest}", image, None),
        ("pull-single", "solo:latest", solo, None),
    ]
    for n, (command, ref, expected, token) in enumerate(pulls):
        out = tmp_path / f"out{n}.sif"
        args = ["-ref", ref, "-out", str(out)]
        if command == "pull":
            args += ["-concurrency", "3", "-partsize", str(1 << 20)]
        result = lib.ok(command, *args, token=token)
        assert result["hash"] == digest_of(expected), ref
        assert out.read_bytes() == expected.read_bytes(), ref
    assert "not found" in lib.fails("pull", "-ref", "tools/demo:nope", "-out", str(tmp_path / "x"))


def test_search_finds_public_images_and_never_another_users_private_ones(registry, lib, alice, bob, sif):
    bob_api = registry.client(bob)
    assert bob_api.post("/api/v1/collections", json={"name": "hidden", "private": True}).status_code == 201
    lib.push(sif("a", seed=1), "alice/tools/finder", "latest", alice)
    lib.push(sif("b", seed=2), "bob/hidden/finder", "latest", bob)

    def found(token: str | None) -> tuple[list[str], list[str]]:
        results = lib.ok("search", "-value", "finder", token=token)
        images = sorted(f"{i['collectionName']}/{i['containerName']}:{','.join(i['tags'])}" for i in results["image"])
        containers = sorted(f"{c['collectionName']}/{c['name']}" for c in results["container"])
        return images, containers

    assert found(None) == (["tools/finder:latest"], ["tools/finder"])
    assert found(alice) == (["tools/finder:latest"], ["tools/finder"])
    assert found(bob) == (["hidden/finder:latest", "tools/finder:latest"], ["hidden/finder", "tools/finder"])
    assert lib.ok("search", "-value", "hidden", token=alice) == {
        "entity": [],
        "collection": [],
        "container": [],
        "image": [],
    }
    assert "not found" in lib.fails("getimage", "-ref", "hidden/finder:latest", token=alice)
    assert lib.ok("getimage", "-ref", "hidden/finder:latest", token=bob)["collectionName"] == "hidden"


def test_deleting_one_tag_keeps_the_others_pullable(registry, lib, alice, bob, sif, mksif, tmp_path):
    image = sif("demo")
    arm = make_sif(mksif, tmp_path / "arm.sif", arch="arm64")
    lib.push(image, "alice/tools/demo", "latest,v1,v2", alice)
    lib.ok("push", "-file", str(arm), "-ref", "alice/tools/demo", "-tags", "latest", "-arch", "arm64", token=alice)

    refused = lib.fails("delete", "-ref", "alice/tools/demo:v1", token=bob)
    assert "403 Forbidden" in refused
    lib.ok("delete", "-ref", "alice/tools/demo:v1", token=alice)
    lib.ok("delete", "-ref", "tools/demo:latest", "-arch", "arm64", token=alice)

    assert lib.ok("getimage", "-ref", "tools/demo:latest")["tags"] == ["latest", "v2"]
    assert "not found" in lib.fails("getimage", "-ref", "tools/demo:v1")
    assert "not found" in lib.fails("getimage", "-ref", "tools/demo:latest", "-arch", "arm64")
    out = tmp_path / "after.sif"
    assert lib.ok("pull", "-ref", "tools/demo:v2", "-out", str(out))["hash"] == digest_of(image)
    assert out.read_bytes() == image.read_bytes()


def test_wrong_token_is_unauthorized_and_creates_nothing(registry, lib, sif):
    registry.add_user("dan")

    message = lib.fails("push", "-file", str(sif("demo")), "-ref", "dan/tools/demo", token="sreg_not-a-real-token")
    assert "401 Unauthorized" in message
    anonymous = lib.fails("push", "-file", str(sif("demo")), "-ref", "dan/tools/demo")
    hint = f"create a token at {registry.url}/tokens, then run 'apptainer remote login'"
    assert f"pushing needs a token: {hint}" in anonymous
    assert "(401 Unauthorized)" in anonymous
    assert registry.client().get("/api/v1/collections/tools").status_code == 404
    assert blobs_on_disk(registry) == [] and count(registry, Image) == 0


def test_a_read_token_is_told_what_pushing_needs(registry, lib, alice, sif):
    lib.push(sif("demo", seed=1), "alice/tools/demo", "latest", alice)
    reader = registry.add_user("alice", scope="read")
    for ref in ("alice/tools/demo", "alice/tools/other", "alice/fresh/demo"):
        refused = lib.fails("push", "-file", str(sif("again", seed=2)), "-ref", ref, token=reader)
        assert "this token has scope 'read'; " in refused and "needs a 'write' token (403 Forbidden)" in refused
    assert count(registry, Image) == 1


def test_push_into_someone_elses_collection_is_refused_and_stores_nothing(registry, lib, alice, bob, sif):
    mine = sif("mine", seed=1)
    lib.push(mine, "alice/tools/demo", "latest", alice)
    alice_api = registry.client(alice)
    assert alice_api.post("/api/v1/collections", json={"name": "vault", "private": True}).status_code == 201
    blobs, images, containers = blobs_on_disk(registry), count(registry, Image), count(registry, Container)
    theirs = sif("theirs", seed=2)

    into_container = lib.fails("push", "-file", str(theirs), "-ref", "bob/tools/demo", token=bob)
    new_container = lib.fails("push", "-file", str(theirs), "-ref", "bob/tools/other", token=bob)
    private = lib.fails("push", "-file", str(theirs), "-ref", "bob/vault/demo", token=bob)

    # The same words whether the collection is public (the client then finds it and fails creating the
    # container or image) or private (it is not found, and creating it fails): only that the name is taken.
    assert into_container == new_container == private.replace("vault", "tools")
    assert "collection name 'tools' is taken (409 Conflict)" in into_container
    assert blobs_on_disk(registry) == blobs
    assert (count(registry, Image), count(registry, Container)) == (images, containers)
    assert lib.ok("getimage", "-ref", "tools/demo:latest")["hash"] == digest_of(mine)


def test_remote_login_check_version_and_service_discovery(registry, lib, alice):
    status = httpx.get(f"{registry.url}/v1/token-status", headers={"Authorization": f"BEARER {alice}"})
    assert status.status_code == 200 and status.json()["data"]["user"] == "alice"
    library_error(httpx.get(f"{registry.url}/v1/token-status", headers={"Authorization": "BEARER nope"}), 401)
    library_error(httpx.get(f"{registry.url}/v1/token-status"), 401)
    config = httpx.get(f"{registry.url}/assets/config/config.prod.json").json()
    assert config["libraryAPI"]["uri"] == registry.url
    assert config["tokenAPI"]["uri"] == registry.url
    assert lib.ok("version")["apiVersion"] == "2.0.0-alpha.2"


def test_malformed_refs_are_400_in_the_library_envelope(registry, lib, alice, sif):
    lib.push(sif("demo"), "alice/tools/demo", "latest", alice)
    api = registry.client(alice)
    for ref in ["Alice/tools/demo:latest", "tools/Demo", "a/b/tools/demo:latest", ":latest", "tools//demo", ""]:
        for method, path in [("GET", "/v1/images/"), ("GET", "/v1/imagefile/"), ("DELETE", "/v1/images/")]:
            response = api.request(method, path + ref, params={"arch": "amd64"}, follow_redirects=False)
            library_error(response, 400)
    assert "400 Bad Request" in lib.fails("getimage", "-ref", "tools/Demo:latest")
    assert lib.ok("getimage", "-ref", "tools/demo:latest")["tags"] == ["latest"]


def start_v2_upload(api: httpx.Client, container_id: str, data: bytes) -> tuple[str, str]:
    """Create the image and ask for its upload URL, as the client does; returns (image id, URL)."""
    sha = hashlib.sha256(data).hexdigest()
    created = api.post("/v1/images", content=json.dumps({"hash": f"sha256.{sha}", "container": container_id}))
    assert created.status_code == 200, created.text
    image_id = created.json()["data"]["id"]
    body = {"filesize": len(data), "md5sum": hashlib.md5(data).hexdigest(), "sha256sum": sha}
    started = api.post(f"/v2/imagefile/{image_id}", content=json.dumps(body))
    assert started.status_code == 200, started.text
    return image_id, started.json()["data"]["uploadURL"]


def test_v2_upload_whose_bytes_do_not_match_the_hash_is_refused(registry, lib, alice, sif):
    old = sif("old", seed=1)
    lib.push(old, "alice/tools/demo", "latest", alice)
    api = registry.client(alice)
    container_id = api.get("/v1/containers/alice/tools/demo").json()["data"]["id"]
    data = sif("new", seed=2).read_bytes()
    image_id, url = start_v2_upload(api, container_id, data)
    blobs = blobs_on_disk(registry)
    announced = {"filesize": len(data), "sha256sum": hashlib.sha256(b"other").hexdigest()}
    library_error(api.post(f"/v2/imagefile/{image_id}", content=json.dumps(announced)), 400)

    wrong = httpx.put(url, content=os.urandom(len(data)))

    assert "digest" in library_error(wrong, 400)
    assert blobs_on_disk(registry) == blobs and uploads_on_disk(registry) == []
    library_error(api.put(f"/v2/imagefile/{image_id}/_complete", content="{}"), 400)
    tag = {"Arch": "amd64", "Tag": "latest", "ImageID": image_id}
    library_error(api.post(f"/v2/tags/{container_id}", content=json.dumps(tag)), 404)
    digest = "sha256." + hashlib.sha256(data).hexdigest()
    assert api.get(f"/v1/images/tools/demo:{digest}", params={"arch": "amd64"}).status_code == 404
    assert lib.ok("getimage", "-ref", "tools/demo:latest")["hash"] == digest_of(old)
    assert httpx.put(url, content=data).status_code == 200
    assert api.get(f"/v1/images/tools/demo:{digest}", params={"arch": "amd64"}).json()["data"]["uploaded"] is True


def test_cut_upload_leaves_nothing_and_keeps_the_old_tag(registry, lib, alice, sif):
    old = sif("old", seed=1)
    lib.push(old, "alice/tools/demo", "latest", alice)
    api = registry.client(alice)
    container_id = api.get("/v1/containers/alice/tools/demo").json()["data"]["id"]
    data = sif("new", size=2 << 20, seed=2).read_bytes()
    image_id, url = start_v2_upload(api, container_id, data)
    parts = urlsplit(url)

    with socket.create_connection((parts.hostname, parts.port)) as sock:
        head = f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {len(data)}\r\n\r\n"
        sock.sendall(head.encode() + data[: len(data) // 2])
        assert wait_for(lambda: len(uploads_on_disk(registry)) == 1)

    assert wait_for(lambda: uploads_on_disk(registry) == [])
    assert blobs_on_disk(registry) == [digest_of(old)[7:]]
    library_error(api.put(f"/v2/imagefile/{image_id}/_complete", content="{}"), 400)
    tag = {"Arch": "amd64", "Tag": "latest", "ImageID": image_id}
    library_error(api.post(f"/v2/tags/{container_id}", content=json.dumps(tag)), 404)
    assert lib.ok("getimage", "-ref", "tools/demo:latest")["hash"] == digest_of(old)
    assert [i["digest"] for i in api.get(NATIVE.format(c="tools", n="demo") + "/images").json()["items"]] == [
        digest_of(old)
    ]


def test_signed_blob_url_honours_ranges_and_refuses_forgeries(registry, lib, alice, sif):
    image = sif("demo", size=50_000)
    lib.push(image, "alice/tools/demo", "latest", alice)
    data, size = image.read_bytes(), image.stat().st_size
    redirect = registry.client().get("/v1/imagefile/tools/demo:latest", params={"arch": "amd64"})
    assert redirect.status_code == 303
    url = redirect.headers["Location"]
    assert url.startswith(registry.url + "/v1/blobs/")

    part = httpx.get(url, headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206 and part.content == data[100:1124]
    assert part.headers["Content-Range"] == f"bytes 100-1123/{size}"
    for bad in [f"bytes={size}-{size + 10}", "bytes=500-100", f"bytes={size + 1}-"]:
        refused = httpx.get(url, headers={"Range": bad})
        library_error(refused, 416)
        assert refused.headers["Content-Range"] == f"bytes */{size}"

    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    signature, path = query["signature"], parts.path
    flipped_signature = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    flipped_digest = path[:-1] + ("0" if path[-1] != "0" else "1")
    expired = sign(registry.context.secret_key, "GET", path, -10)
    forgeries = [
        f"{registry.url}{path}?{urlencode({**query, 'signature': flipped_signature})}",
        f"{registry.url}{flipped_digest}?{parts.query}",
        f"{registry.url}{path}?{urlencode({**query, 'expires': str(int(time.time()) - 10)})}",
        f"{registry.url}{path}?{expired}",
        f"{registry.url}{path}",
    ]
    for forged in forgeries:
        library_error(httpx.get(forged), 403)
    assert httpx.get(url).content == data


def test_multipart_abort_discards_the_parts_and_only_the_pusher_may_abort(registry, alice, bob):
    api, mallory = registry.client(alice), registry.client(bob)
    old = os.urandom(3000)
    pushed = api.post(
        NATIVE.format(c="tools", n="demo") + "/images",
        params={"digest": "sha256." + hashlib.sha256(old).hexdigest(), "tag": "latest"},
        content=old,
    )
    assert pushed.status_code == 201, pushed.text
    container_id = api.get("/v1/containers/alice/tools/demo").json()["data"]["id"]
    data = os.urandom(100_000)
    sha = hashlib.sha256(data).hexdigest()
    created = api.post("/v1/images", content=json.dumps({"hash": f"sha256.{sha}", "container": container_id}))
    assert created.status_code == 200, created.text
    image_id = created.json()["data"]["id"]
    started = api.post(f"/v2/imagefile/{image_id}/_multipart", content=json.dumps({"filesize": len(data)}))
    assert started.status_code == 200, started.text
    upload_id, total = started.json()["data"]["uploadID"], started.json()["data"]["totalParts"]
    assert total == 1
    asked = api.put(
        f"/v2/imagefile/{image_id}/_multipart",
        content=json.dumps({"uploadID": upload_id, "partNumber": 1, "partSize": len(data)}),
    )
    assert asked.status_code == 200, asked.text
    part_url = asked.json()["data"]["presignedURL"]
    part = httpx.put(part_url, content=data)
    assert part.status_code == 200 and part.headers["ETag"], part.text
    blobs = blobs_on_disk(registry)

    abort = f"/v2/imagefile/{image_id}/_multipart_abort"
    assert "is taken" in library_error(mallory.put(abort, content=json.dumps({"uploadID": upload_id})), 409)
    library_error(registry.client().put(abort, content=json.dumps({"uploadID": upload_id})), 401)
    with registry.session() as session:
        assert session.get(UploadSession, upload_id).state == "open"

    aborted = api.put(f"/v2/imagefile/{image_id}/_multipart_abort", content=json.dumps({"uploadID": upload_id}))
    assert aborted.status_code == 200, aborted.text
    with registry.session() as session:
        assert session.get(UploadSession, upload_id).state == "aborted"
    assert uploads_on_disk(registry) == [] and blobs_on_disk(registry) == blobs
    completed = {"uploadID": upload_id, "completedParts": [{"partNumber": 1, "token": part.headers["ETag"]}]}
    library_error(api.put(f"/v2/imagefile/{image_id}/_multipart_complete", content=json.dumps(completed)), 404)
    assert httpx.put(part_url, content=data).status_code == 404
    library_error(api.put(abort, content=json.dumps({"uploadID": upload_id})), 404)
    assert count(registry, Image, Image.digest == f"sha256.{sha}", Image.uploaded.is_(True)) == 0
    assert count(registry, Image, Image.digest == f"sha256.{sha}", Image.uploaded.is_(False)) == 1
    assert [i["digest"] for i in api.get(NATIVE.format(c="tools", n="demo") + "/images").json()["items"]] == [
        "sha256." + hashlib.sha256(old).hexdigest()
    ]


def test_legacy_v1_upload_and_v1_tags(registry, alice, bob):
    api = registry.client(alice)
    old = os.urandom(3000)
    pushed = api.post(
        NATIVE.format(c="tools", n="demo") + "/images",
        params={"digest": "sha256." + hashlib.sha256(old).hexdigest(), "tag": "latest"},
        content=old,
    )
    assert pushed.status_code == 201, pushed.text
    container_id = api.get("/v1/containers/alice/tools/demo").json()["data"]["id"]
    data = os.urandom(50_000)
    sha = hashlib.sha256(data).hexdigest()
    created = api.post("/v1/images", content=json.dumps({"hash": f"sha256.{sha}", "container": container_id}))
    assert created.status_code == 200, created.text
    image_id = created.json()["data"]["id"]
    blobs = blobs_on_disk(registry)

    library_error(registry.client(bob).post(f"/v1/imagefile/{image_id}", content=data), 409)
    library_error(registry.client().post(f"/v1/imagefile/{image_id}", content=data), 401)
    assert "digest" in library_error(api.post(f"/v1/imagefile/{image_id}", content=os.urandom(len(data))), 400)
    assert blobs_on_disk(registry) == blobs
    assert wait_for(lambda: uploads_on_disk(registry) == [])
    tag = {"Tag": "legacy", "ImageID": image_id}
    library_error(api.post(f"/v1/tags/{container_id}", content=json.dumps(tag)), 404)

    uploaded = api.post(f"/v1/imagefile/{image_id}", content=data)
    assert uploaded.status_code == 200, uploaded.text
    assert count(registry, Image, Image.digest == f"sha256.{sha}", Image.uploaded.is_(True)) == 1
    tagged = api.post(f"/v1/tags/{container_id}", content=json.dumps(tag))
    assert tagged.status_code == 200, tagged.text
    library_error(registry.client(bob).post(f"/v1/tags/{container_id}", content=json.dumps(tag)), 403)
    tags = api.get(f"/v1/tags/{container_id}").json()["data"]
    assert tags["legacy"] == str(image_id) and set(tags) == {"latest", "legacy"}
    assert api.get(f"/v2/tags/{container_id}").json()["data"]["amd64"] == tags
    pulled = registry.client().get("/v1/imagefile/tools/demo:legacy", params={"arch": "amd64"}, follow_redirects=True)
    assert pulled.status_code == 200 and pulled.content == data


def test_without_redirects_the_download_carries_the_bytes(registry, lib, alice, sif, tmp_path):
    image = sif("direct", size=2 << 20, seed=9)
    lib.push(image, "alice/tools/direct", "latest", alice)
    registry.context.library_redirect = False
    direct = registry.client().get("/v1/imagefile/tools/direct:latest", params={"arch": "amd64"})
    assert direct.status_code == 200
    assert direct.content == image.read_bytes()
    assert direct.headers["ETag"] == f'"{digest_of(image)}"'
    out = tmp_path / "direct.sif"
    result = lib.ok("pull", "-ref", "tools/direct:latest", "-out", str(out), "-concurrency", "3")
    assert result["hash"] == digest_of(image)
    assert out.read_bytes() == image.read_bytes()
