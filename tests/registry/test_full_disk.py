"""A full disk under the blob store: every surface's upload answers 507 in its own envelope, nothing
half-written stays, and images already stored keep being pulled.

The disk is a real one where the tests may mount (a 1 MiB tmpfs, as root on Linux); elsewhere it is a
blob store whose writes raise ``OSError(ENOSPC)`` exactly as a full file system does.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from requests_toolbelt import MultipartEncoder

from sregistry_jupyter.registry.storage import FilesystemBlobStore
from tests.registry.test_shub import signed

IMAGES = "/api/v1/collections/lab/containers/tool/images"
BIG = 3 << 20


class FullStore(FilesystemBlobStore):
    """A store on a disk with no space left: every write of image bytes fails as the kernel says it."""

    full = False

    def writer(self):
        writer = super().writer()
        if self.full:
            writer._write = _no_space  # type: ignore[method-assign]
        return writer

    def part_writer(self, upload_id, offset, length):
        part = super().part_writer(upload_id, offset, length)
        if self.full:
            part._write = _no_space  # type: ignore[method-assign]
        return part


def _no_space(_data) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def registry_settings() -> dict:
    return {"multipart_part_size": 1 << 20}


@pytest.fixture
def small_disk(registry, tmp_path: Path) -> Iterator[FilesystemBlobStore]:
    """The registry's store on a 1 MiB file system (or on ``FullStore``), holding one small image."""
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    store = FilesystemBlobStore(root=str(mount)) if mounted.returncode == 0 else FullStore(root=str(mount))
    registry.context.store = store
    yield store
    if mounted.returncode == 0:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def digest_of(data: bytes) -> str:
    return "sha256." + hashlib.sha256(data).hexdigest()


def full(store: FilesystemBlobStore) -> None:
    if isinstance(store, FullStore):
        store.full = True


def insufficient(response: httpx.Response) -> str:
    assert response.status_code == 507, response.text
    return response.text


def test_every_surface_answers_507_and_stored_images_are_still_pulled(registry, small_disk):
    token = registry.add_user("alice", scope="admin")
    alice = registry.client(token)
    kept = os.urandom(100_000)
    assert alice.post(IMAGES, params={"digest": digest_of(kept), "tag": "kept"}, content=kept).status_code == 201
    full(small_disk)
    big = os.urandom(BIG)

    native = alice.post(IMAGES, params={"digest": digest_of(big), "tag": "big"}, content=big)
    insufficient(native)
    assert native.json()["code"] == "INSUFFICIENT_STORAGE" and "full" in native.json()["message"]

    container = alice.get("/v1/containers/alice/lab/tool").json()["data"]["id"]
    image = alice.post("/v1/images", content=json.dumps({"hash": digest_of(big), "container": container}))
    image_id = image.json()["data"]["id"]
    single = alice.post(f"/v2/imagefile/{image_id}", content=json.dumps({"filesize": len(big)}))
    library_put = httpx.put(single.json()["data"]["uploadURL"], content=big, timeout=60)
    insufficient(library_put)
    assert library_put.json()["error"]["code"] == 507 and "full" in library_put.json()["error"]["message"]

    started = alice.post(f"/v2/imagefile/{image_id}/_multipart", content=json.dumps({"filesize": len(big)}))
    upload_id = started.json()["data"]["uploadID"]
    asked = alice.put(
        f"/v2/imagefile/{image_id}/_multipart",
        content=json.dumps({"uploadID": upload_id, "partNumber": 1, "partSize": 1 << 20}),
    )
    part = httpx.put(asked.json()["data"]["presignedURL"], content=big[: 1 << 20], timeout=60)
    insufficient(part)
    assert part.json()["error"]["code"] == 507

    meta = ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}"
        for k, v in {"collection": "lab", "container": "tool", "digest": digest_of(big)}.items()
    )
    tus = {"Tus-Resumable": "1.0.0"}
    created = alice.post("/api/v1/uploads", headers={**tus, "Upload-Length": str(len(big)), "Upload-Metadata": meta})
    patch = alice.patch(
        created.headers["Location"],
        headers={**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        content=big,
    )
    insufficient(patch)
    assert patch.json()["code"] == "INSUFFICIENT_STORAGE"

    headers = signed("upload", "alice", token, "lab", "tool", "shub")
    fields = {"SREGISTRY_EVENT": headers["Authorization"], "name": "tool", "collection": "lab", "tag": "shub"}
    encoder = MultipartEncoder(fields={**fields, "file1": ("tool:shub.sif", big, "text/plain")})
    shub = registry.client().post(
        "/upload", content=encoder.to_string(), headers={**headers, "Content-Type": encoder.content_type}
    )
    insufficient(shub)
    assert "full" in shub.json()["detail"]

    assert sorted(i["digest"] for i in alice.get(IMAGES).json()["items"]) == [digest_of(kept)]
    assert alice.get(f"{IMAGES}/kept/file").content == kept
    tus_id = created.headers["Location"].rsplit("/", 1)[1]
    leftovers = sorted(u.upload_id for u in small_disk.list_uploads())
    assert leftovers == sorted([upload_id, tus_id]), "only the open sessions keep their assemblies, to resume"
