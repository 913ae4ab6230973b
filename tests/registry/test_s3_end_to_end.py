"""The registry on the S3 store, end to end: the real library client (multipart included), sregistry-cli
and the native API push and pull through a real S3-compatible server (moto's, in a process of its own on
loopback), library pulls are redirected to the object store, GC removes blobs there, and the server
refuses to start on a bucket it cannot use. After every test the bucket holds blobs and nothing else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from sregistry_jupyter.registry.orm import UploadSession
from sregistry_jupyter.registry.services import gc
from sregistry_jupyter.registry.storage.s3 import S3BlobStore
from tests.conftest import CLI, LiveRegistry, free_port, open_context, start_in_thread, wait_for
from tests.gotools import make_sif
from tests.registry.s3_support import (
    CREDENTIALS,
    bucket_contents,
    empty_bucket,
    make_s3_store,
    moto_process_endpoint,
    new_bucket,
)
from tests.registry.test_library_client import LibClient
from tests.registry.test_sregistry_cli import Cli, output
from tests.registry.test_tus_uploads import TUS
from tests.registry.test_tus_uploads import create as tus_create
from tests.registry.test_tus_uploads import outcome as tus_outcome
from tests.registry.test_tus_uploads import patch as tus_patch

__all__ = ["moto_process_endpoint"]

NATIVE_IMAGES = "/api/v1/collections/{c}/containers/{n}/images"


def digest_of(data: bytes) -> str:
    return "sha256." + hashlib.sha256(data).hexdigest()


@pytest.fixture
def bucket(moto_process_endpoint: str) -> Iterator[str]:
    name = new_bucket(moto_process_endpoint)
    try:
        yield name
    finally:
        empty_bucket(moto_process_endpoint, name)


@pytest.fixture
def store_traits() -> dict:
    return {}


@pytest.fixture
def store(moto_process_endpoint: str, bucket: str, store_traits: dict) -> S3BlobStore:
    return make_s3_store(moto_process_endpoint, bucket, prefix="reg/", **store_traits)


@pytest.fixture
def registry(db_url: str, tmp_path: Path, store: S3BlobStore) -> Iterator[LiveRegistry]:
    """A registry whose blobs are in the S3 bucket; small library parts, so a 70 MiB push has three."""
    data_dir = tmp_path / "data"
    context = open_context(db_url, data_dir, store=store, multipart_part_size=32 << 20)
    url, stop = start_in_thread(context)
    live = LiveRegistry(url, context, data_dir, db_url)
    try:
        yield live
    finally:
        for client in live.clients:
            client.close()
        stop()


def only_blobs(store: S3BlobStore, *digests: str) -> None:
    """The bucket holds exactly these blobs: no upload marker, staged object or multipart upload."""
    assert bucket_contents(store) == {"objects": sorted(store.blob_key(d) for d in digests), "multipart": []}


def file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return "sha256." + hashlib.file_digest(f, "sha256").hexdigest()


def test_library_client_multipart_push_and_a_pull_redirected_to_the_object_store(
    registry, store, moto_process_endpoint, libclient_bin, mksif, tmp_path
):
    lib = LibClient(libclient_bin, registry.url)
    alice = registry.add_user("alice", scope="write")
    image = make_sif(mksif, tmp_path / "big.sif", size=70 << 20, seed=11)
    digest = file_digest(image)

    lib.push(image, "alice/tools/big", "latest", alice)

    with registry.session() as session:
        upload = session.scalars(select(UploadSession)).one()
        assert (upload.kind, upload.state, upload.parts["totalParts"]) == ("multipart", "done", 3)
    only_blobs(store, digest)
    redirect = registry.client().get("/v1/imagefile/alice/tools/big:latest?arch=amd64")
    assert redirect.status_code == 303
    location = redirect.headers["Location"]
    assert location.startswith(f"{moto_process_endpoint}/{store.bucket}/{store.blob_key(digest)}?")
    assert "X-Amz-Signature=" in location
    ranged = httpx.get(location, headers={"Range": "bytes=0-1024"})
    assert ranged.status_code == 206
    assert ranged.headers["Content-Range"] == f"bytes 0-1024/{image.stat().st_size}"
    with image.open("rb") as f:
        assert ranged.content == f.read(1025)
    out = tmp_path / "pulled.sif"
    pulled = lib.ok("pull", "-ref", "alice/tools/big:latest", "-out", str(out), "-partsize", str(8 << 20))
    assert file_digest(out) == digest == pulled["hash"]


def test_library_client_single_part_push_and_pull(registry, store, libclient_bin, mksif, tmp_path):
    lib = LibClient(libclient_bin, registry.url)
    alice = registry.add_user("alice", scope="write")
    image = make_sif(mksif, tmp_path / "small.sif", size=3 << 20, seed=12)

    lib.push(image, "alice/tools/small", "latest,v1", alice)

    only_blobs(store, file_digest(image))
    out = tmp_path / "small.pulled.sif"
    lib.ok("pull", "-ref", "tools/small:v1", "-out", str(out), "-concurrency", "3", "-partsize", str(1 << 20))
    assert out.read_bytes() == image.read_bytes()


def test_native_api_push_pull_ranges_and_a_refused_push_leave_only_the_blob(registry, store):
    api = registry.client(registry.add_user("alice", scope="write"))
    data = os.urandom(12 << 20)
    url = NATIVE_IMAGES.format(c="lab", n="tool")

    pushed = api.post(url, params={"digest": digest_of(data), "tag": "latest"}, content=data)
    refused = api.post(url, params={"digest": digest_of(b"other"), "tag": "bad"}, content=os.urandom(6 << 20))

    assert pushed.status_code == 201, pushed.text
    assert refused.status_code == 400 and refused.json()["code"] == "DIGEST_INVALID"
    assert wait_for(lambda: bucket_contents(store)["multipart"] == [], 10)
    only_blobs(store, digest_of(data))
    pulled = registry.client().get(url + "/latest/file")
    assert pulled.status_code == 200 and pulled.content == data
    ranged = registry.client().get(url + "/latest/file", headers={"Range": "bytes=9000000-9000099"})
    assert ranged.status_code == 206 and ranged.content == data[9_000_000:9_000_100]


def test_a_push_cut_halfway_leaves_nothing_in_the_bucket(registry, store):
    token = registry.add_user("alice", scope="write")
    size = 24 << 20
    host, port = registry.url.removeprefix("http://").split(":")
    path = NATIVE_IMAGES.format(c="lab", n="cut") + f"?digest={digest_of(b'x')}&tag=latest"
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Length: {size}\r\n\r\n".encode()
        )
        for _ in range(14):
            sock.sendall(os.urandom(1 << 20))
    assert wait_for(lambda: bucket_contents(store) == {"objects": [], "multipart": []}, 20), bucket_contents(store)
    assert registry.client().get("/api/v1/collections/lab/containers/cut").status_code == 404


def test_sregistry_cli_pushes_and_pulls_through_s3(registry, store, mksif, tmp_path):
    image = make_sif(mksif, tmp_path / "img.sif", size=2 << 20, seed=13)
    alice = Cli(registry.url, "alice", registry.add_user("alice", scope="write"), tmp_path / "alice")

    pushed = alice("push", "--name", "lab/img", "--tag", "latest", str(image))
    assert pushed.returncode == 0, output(pushed)
    pulled = alice("pull", "lab/img:latest")

    assert pulled.returncode == 0, output(pulled)
    assert (alice.cwd / "lab-img:latest.sif").read_bytes() == image.read_bytes()
    only_blobs(store, file_digest(image))


def test_gc_removes_unreferenced_blobs_from_the_bucket_after_the_grace_period(registry, store):
    api = registry.client(registry.add_user("alice", scope="write"))
    kept, dropped = os.urandom(1 << 20), os.urandom(1 << 20)
    url = NATIVE_IMAGES.format(c="lab", n="tool")
    assert api.post(url, params={"digest": digest_of(kept), "tag": "kept"}, content=kept).status_code == 201
    assert api.post(url, params={"digest": digest_of(dropped), "tag": "gone"}, content=dropped).status_code == 201
    assert api.delete(f"{url}/{digest_of(dropped)}").status_code in (200, 204)

    with registry.session() as session:
        in_grace = gc.collect(session, store, grace=dt.timedelta(hours=1))
    only_blobs(store, digest_of(kept), digest_of(dropped))
    with registry.session() as session:
        collected = gc.collect(session, store, grace=dt.timedelta(0))

    assert in_grace.removed == [] and in_grace.kept_in_grace == 1
    assert collected.removed == [digest_of(dropped)]
    only_blobs(store, digest_of(kept))
    assert registry.client().get(url + "/kept/file").content == kept


@pytest.mark.parametrize("store_traits", [{"redirect_downloads": False}])
def test_without_redirects_library_pulls_are_streamed_by_the_registry(
    registry, store, libclient_bin, mksif, tmp_path
):
    lib = LibClient(libclient_bin, registry.url)
    alice = registry.add_user("alice", scope="write")
    image = make_sif(mksif, tmp_path / "img.sif", size=1 << 20, seed=14)
    lib.push(image, "alice/tools/img", "latest", alice)

    redirect = registry.client().get("/v1/imagefile/tools/img:latest?arch=amd64")

    assert redirect.status_code == 303
    assert redirect.headers["Location"].startswith(registry.url + "/v1/blobs/")
    fetched = httpx.get(redirect.headers["Location"], headers={"Range": "bytes=100-199"})
    assert fetched.status_code == 206 and fetched.content == image.read_bytes()[100:200]
    out = tmp_path / "pulled.sif"
    lib.ok("pull", "-ref", "tools/img:latest", "-out", str(out))
    assert out.read_bytes() == image.read_bytes()


def serve_s3(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    aws = {
        "AWS_ACCESS_KEY_ID": CREDENTIALS["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["secret_access_key"],
        "AWS_DEFAULT_REGION": CREDENTIALS["region_name"],
    }
    data_dir = str(tmp_path / "data")
    return subprocess.Popen(
        [*CLI, "serve", "--port", "0", "--data-dir", data_dir, "--RegistryApp.blob_store_class=s3", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **aws, **(env or {})},
    )


def test_serve_with_the_s3_alias_and_the_endpoint_from_the_environment(tmp_path, moto_process_endpoint, bucket):
    process = serve_s3(tmp_path, f"--S3BlobStore.bucket={bucket}", env={"AWS_ENDPOINT_URL": moto_process_endpoint})
    try:
        line = process.stdout.readline()
        assert "is running at" in line, process.stderr.read() if process.poll() is not None else line
        url = line.split("is running at ")[1].strip().rstrip("/")
        assert httpx.get(f"{url}/version").status_code == 200
    finally:
        process.terminate()
        process.wait(30)
    assert "S3BlobStore" in process.stderr.read()


@pytest.mark.parametrize("where", ["missing bucket", "nothing listening"])
def test_serve_refuses_to_start_in_one_line_on_an_unusable_bucket(tmp_path, moto_process_endpoint, where):
    endpoint = moto_process_endpoint if where == "missing bucket" else f"http://127.0.0.1:{free_port()}"
    process = serve_s3(
        tmp_path,
        "--S3BlobStore.bucket=no-such-bucket",
        f"--S3BlobStore.endpoint_url={endpoint}",
    )
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "is running" not in stdout
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    expected = "does not exist" if where == "missing bucket" else "cannot be reached"
    assert lines[0].startswith(f"S3 bucket 'no-such-bucket' at {endpoint} {expected}"), lines[0]


def test_a_tus_upload_resumes_after_a_cut_patch_and_refuses_parts_below_s3s_minimum(registry, store):
    api = registry.client(registry.add_user("alice", scope="write"))
    data = os.urandom(13 << 20)
    url = tus_create(api, data)
    small = tus_patch(api, url, data[: 1 << 20], 0)
    assert small.status_code == 400 and "at least 5 MiB" in small.json()["message"]
    assert tus_patch(api, url, data[: 6 << 20], 0).status_code == 204
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(
            f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: {api.headers['Authorization']}\r\n"
            f"Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Upload-Offset: {6 << 20}\r\nContent-Length: {len(data) - (6 << 20)}\r\n\r\n".encode()
            + data[6 << 20 : 9 << 20]
        )
    upload_id = parts.path.rsplit("/", 1)[1]

    def settled() -> bool:
        with registry.session() as session:
            return session.get(UploadSession, upload_id).writers == 0

    assert wait_for(settled, 20)
    offset = int(api.head(url, headers=TUS).headers["Upload-Offset"])
    assert offset == 6 << 20  # S3 keeps nothing of a cut PATCH: it is sent again from where it began
    assert tus_patch(api, url, data[offset:], offset).status_code == 204
    status = tus_outcome(api, url)
    assert status["state"] == "done", status
    assert api.get("/api/v1/collections/lab/containers/tool/images/v1/file").content == data
    assert wait_for(lambda: bucket_contents(store)["multipart"] == [], 10)
    only_blobs(store, digest_of(data))
