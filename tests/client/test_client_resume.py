"""The client's resumable push (tus) against a live registry: a connection cut mid-PATCH resumes from
the offset the registry reports, a stale offset is corrected, a stopped push terminates its upload so
nothing stays behind, and the per-user cap on uploads in progress is a clear refusal."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from sqlalchemy import select

from sregistry_jupyter.client import Forbidden, RegistryClient
from sregistry_jupyter.registry.orm import UploadPart, UploadSession
from sregistry_jupyter.registry.services.uploads import UploadLimits
from tests.conftest import blobs_on_disk, uploads_on_disk


def digest_of(data: bytes) -> str:
    return "sha256." + hashlib.sha256(data).hexdigest()


def sessions(registry) -> list[UploadSession]:
    with registry.session() as session:
        return list(session.scalars(select(UploadSession).where(UploadSession.kind == "tus")))


def writes(registry, upload_id: str) -> list[tuple[int, int]]:
    with registry.session() as session:
        rows = session.scalars(select(UploadPart).where(UploadPart.upload_id == upload_id).order_by(UploadPart.offset))
        return [(r.offset, r.size) for r in rows]


def test_a_push_cut_mid_patch_resumes_from_the_registrys_offset(registry, connect, sif, cutting_proxy) -> None:
    token = registry.add_user("alice")
    source = sif("big", size=12 << 20)
    size = source.stat().st_size
    cutting_proxy.cut_after(5 << 20, "up")
    image = connect(cutting_proxy.url, token).push(source, "lab/tools:v1")
    assert cutting_proxy.made == 1
    assert image.digest == digest_of(source.read_bytes())
    [upload] = sessions(registry)
    assert upload.state == "done" and upload.received == size
    first, *rest = writes(registry, upload.id)
    assert first[0] == 0 and 0 < first[1] < 5 << 20
    assert rest and rest[0][0] == first[1], "the second PATCH went on where the first one stopped"
    assert cutting_proxy.carried["up"] < size + (6 << 20), "the push started again instead of resuming"
    pulled = registry.client(token).get("/api/v1/collections/lab/containers/tools/images/v1/file").content
    assert pulled == source.read_bytes()
    assert uploads_on_disk(registry) == []


class StaleOffset(httpx.HTTPTransport):
    """Sends the first PATCH with an offset the registry does not hold, as a client that lost track would."""

    def __init__(self) -> None:
        super().__init__()
        self.conflicts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH" and not self.conflicts:
            request.headers["Upload-Offset"] = "4096"
            response = super().handle_request(request)
            if response.status_code == 409:
                self.conflicts += 1
            return response
        return super().handle_request(request)


def test_an_offset_the_registry_does_not_hold_is_a_conflict_the_client_recovers_from(registry, sif) -> None:
    token = registry.add_user("alice")
    source = sif("img", size=1 << 20)
    transport = StaleOffset()
    with RegistryClient(registry.url, token, transport=transport) as client:
        image = client.push(source, "lab/tools:v1")
    assert transport.conflicts == 1
    assert image.digest == digest_of(source.read_bytes())
    [upload] = sessions(registry)
    assert writes(registry, upload.id) == [(0, source.stat().st_size)]


class Stop(Exception):
    pass


@pytest.mark.parametrize("connect", ["sync", "async"], indirect=True)
def test_a_stopped_push_terminates_its_upload_and_leaves_nothing(registry, connect, sif, cutting_proxy) -> None:
    token = registry.add_user("alice")
    source = sif("img", size=6 << 20)
    cutting_proxy.pace = 0.002

    def progress(done: int, total: int) -> None:
        if done > 1 << 20:
            raise Stop

    with pytest.raises(Stop):
        connect(cutting_proxy.url, token).push(source, "lab/tools:v1", progress=progress)
    [upload] = sessions(registry)
    assert upload.state == "aborted"
    assert uploads_on_disk(registry) == [] and blobs_on_disk(registry) == []
    assert registry.client(token).get("/api/v1/collections/lab/containers/tools/images").status_code == 404


def test_the_cap_on_uploads_in_progress_is_a_clear_refusal(registry, connect, sif) -> None:
    token = registry.add_user("alice")
    registry.context.upload_limits = UploadLimits(max_open=10, max_bytes=1000)
    with pytest.raises(Forbidden) as refused:
        connect(registry.url, token).push(sif("img", size=1 << 20), "lab/tools:v1")
    assert "at most 1000 bytes" in str(refused.value)
    assert sessions(registry) == [] and uploads_on_disk(registry) == []
