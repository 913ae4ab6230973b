"""Resumable uploads: tus 1.0 (core, creation, termination) at ``/api/v1/uploads``.

``POST`` with ``Upload-Length`` and ``Upload-Metadata`` (base64 values: ``collection``, ``container``,
``digest`` ``sha256.<hex>``, optional ``tags`` comma-separated, ``description``, ``filename``) checks
the push as a native push would and answers 201 with the upload's ``Location``. ``PATCH`` with
``Upload-Offset`` and ``Content-Type: application/offset+octet-stream`` appends bytes (409 if the
offset is not where the upload ends) and answers 204 with the new ``Upload-Offset``; a cut connection
keeps what arrived. ``HEAD`` reports ``Upload-Offset`` and ``Upload-Length``; ``DELETE`` terminates.
``GET`` on the upload's URL answers JSON ``{"state": "receiving"|"verifying"|"done"|"failed", "error",
"image"}``: once every byte is there the whole digest is verified on the heavy pool and only then is
the image recorded, so a half-finished upload is never visible.

The state lives in the database and the bytes in the blob store, so any registry process can take any
request. The protocol is same-origin only (no CORS): the web pages send their session cookie with the
``X-XSRF-Token`` header, everyone else a ``Bearer`` token; each upload belongs to whoever created it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import Any

from sqlalchemy.orm import Session

from ..access import Principal
from ..context import Registry
from ..errors import Conflict, CredentialRequired, InvalidInput, RegistryError, TooLarge
from ..names import validate_digest
from ..orm import Image, UploadSession
from ..services import images, uploads
from ..storage import BlobInfo
from .api import ApiHandler
from .serialize import image_model
from .streaming import ReceivesBlob, declared_size, storage_errors
from .transfer import publish_completion

log = logging.getLogger("sregistry_jupyter")

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination"
OFFSET_TYPE = "application/offset+octet-stream"
# Verifications running in the background, held here so that none is collected before it ends.
VERIFYING: set[asyncio.Future[None]] = set()
STATES = {"open": "receiving", "completing": "verifying", "done": "done", "failed": "failed", "aborted": "failed"}


class TusVersionUnsupported(RegistryError):
    status = 412
    code = "TUS_VERSION"


class UnsupportedMediaType(RegistryError):
    status = 415
    code = "MEDIA_TYPE"


def parse_metadata(header: str) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs (a key alone has an empty value)."""
    values: dict[str, str] = {}
    for pair in header.split(","):
        key, _, encoded = pair.strip().partition(" ")
        if not key:
            continue
        try:
            values[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInput(f"Upload-Metadata: the value of {key!r} is not base64 of UTF-8 text") from None
    return values


def offset_header(raw: str | None, name: str) -> int:
    if raw is None or not raw.isdigit() or len(raw) > 20:
        raise InvalidInput(f"{name} must be a non-negative integer")
    return int(raw)


def create_upload(
    session: Session, principal: Principal, size: int, meta: dict[str, str], limits: uploads.UploadLimits
) -> str:
    """Check the push the upload is for (as a native push), then open its session."""
    collection, container, digest = (meta.get(k, "") for k in ("collection", "container", "digest"))
    if not (collection and container and digest):
        raise InvalidInput("Upload-Metadata needs collection, container and digest")
    validate_digest(digest)
    tags = [t.strip() for t in meta.get("tags", "").split(",") if t.strip()]
    target = images.authorize_push(session, principal, collection, container, tags)
    kept = {
        "collection": target.collection,
        "container": target.container,
        "tags": list(target.tags),
        "description": meta.get("description", ""),
        "filename": meta.get("filename", ""),
    }
    return uploads.open_session(session, principal, "tus", size, digest, limits, meta=kept).id


def upload_status(session: Session, principal: Principal, upload_id: str) -> dict[str, Any]:
    upload = uploads.owned_upload(session, principal, upload_id)
    image = session.get(Image, upload.image_id) if upload.image_id else None
    return {
        "state": STATES.get(upload.state, "failed"),
        "error": upload.error,
        "image": image_model(image).model_dump(mode="json") if image is not None and upload.state == "done" else None,
        "offset": upload.received,
        "length": upload.declared_size,
    }


def upload_offsets(session: Session, principal: Principal, upload_id: str) -> tuple[int, int, str]:
    upload = uploads.owned_upload(session, principal, upload_id)
    return upload.received, upload.declared_size, upload.state


def terminate(session: Session, principal: Principal, upload_id: str) -> bool:
    """End an upload that is still receiving; True if its bytes are to be discarded."""
    upload = uploads.owned_upload(session, principal, upload_id)
    if upload.state != "open":
        return False
    uploads.set_state(session, upload_id, "aborted")
    return True


def record_tus_push(
    session: Session, principal: Principal, upload_id: str, blob: BlobInfo, sif: dict[str, Any] | None, addr: str
) -> None:
    """Record the verified upload as its image (the push is checked again: roles may have changed)."""
    upload = session.get(UploadSession, upload_id)
    meta = upload.meta or {}
    target = images.authorize_push(session, principal, meta["collection"], meta["container"], meta.get("tags", []))
    image = images.commit_push(
        session, principal, target, blob, sif=sif, description=meta.get("description", ""), remote_addr=addr
    )
    upload.image_id = image.id
    uploads.set_state(session, upload_id, "done")


class TusHandler(ApiHandler):
    """What every tus response carries; the version check for every request but ``OPTIONS``."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Tus-Resumable", TUS_VERSION)

    async def prepare(self) -> None:
        await super().prepare()
        if self.request.method == "OPTIONS":
            return
        if self.request.headers.get("Tus-Resumable") != TUS_VERSION:
            raise TusVersionUnsupported(f"send Tus-Resumable: {TUS_VERSION}", headers={"Tus-Version": TUS_VERSION})
        if not self.principal.authenticated:
            raise CredentialRequired("uploading needs a token")

    def options(self, *_args: str) -> None:
        self.set_header("Tus-Version", TUS_VERSION)
        self.set_header("Tus-Extension", TUS_EXTENSIONS)
        self.set_header("Tus-Max-Size", str(self.registry.max_upload_size))
        self.set_status(204)
        self.finish()


class UploadsHandler(TusHandler):
    """``POST /api/v1/uploads``: create an upload (tus creation)."""

    async def post(self) -> None:
        size = offset_header(self.request.headers.get("Upload-Length"), "Upload-Length")
        if size > self.registry.max_upload_size:
            raise TooLarge(f"images may be at most {self.registry.max_upload_size} bytes")
        meta = parse_metadata(self.request.headers.get("Upload-Metadata", ""))
        upload_id = await self.write_db(create_upload, self.principal, size, meta, self.registry.upload_limits)
        with storage_errors():
            await asyncio.get_running_loop().run_in_executor(None, self.registry.store.start_assembly, upload_id, size)
        self.set_header("Location", f"{self.base_url()}/api/v1/uploads/{upload_id}")
        self.set_status(201)
        self.finish()


class UploadHandler(ReceivesBlob, TusHandler):
    """One upload: ``HEAD`` its offset, ``PATCH`` more bytes, ``DELETE`` it, ``GET`` its outcome."""

    claimed: uploads.ClaimedWriter | None = None
    release: asyncio.Future[int] | None = None

    async def prepare(self) -> None:
        await super().prepare()
        if self.request.method != "PATCH":
            self.limit_body(0)
            return
        if self.request.headers.get("Content-Type", "").split(";")[0].strip() != OFFSET_TYPE:
            raise UnsupportedMediaType(f"PATCH bodies are {OFFSET_TYPE}")
        upload_id = self.path_args[0]
        self.offset = offset_header(self.request.headers.get("Upload-Offset"), "Upload-Offset")
        length = declared_size(self.request.headers.get("Content-Length"))
        received, total, _ = await self.read_db(upload_offsets, self.principal, upload_id)
        if self.offset != received:
            raise Conflict(f"the upload holds {received} bytes; continue from that offset")
        if self.offset + length > total:
            raise InvalidInput(f"the upload is {total} bytes; this PATCH would end beyond it")
        etag = await self.write_db(uploads.claim_append, self.principal, upload_id, self.offset)
        try:
            with storage_errors():
                part = self.registry.store.part_writer(upload_id, self.offset, length)
        except BaseException:
            await self.write_db(uploads.release_append, upload_id, etag, self.offset, 0, None)
            raise
        self.claimed = uploads.ClaimedWriter(
            part, self.registry.hashes, upload_id, etag, self.released, keep_partial=True
        )
        self.receive_into(self.claimed, length)

    def released(self, size: int, _whole: bool, prefix_sha256: str | None) -> None:
        """Record what this PATCH wrote once its file is closed, whether it finished or was cut."""
        etag = self.claimed.etag if self.claimed else ""
        self.release = asyncio.ensure_future(
            self.write_db(uploads.release_append, self.path_args[0], etag, self.offset, size, prefix_sha256)
        )
        self.release.add_done_callback(log_failure)

    async def patch(self, upload_id: str) -> None:
        await self.received()
        self.claimed.finish()
        offset = await self.release
        _, total, _ = await self.read_db(upload_offsets, self.principal, upload_id)
        if offset == total:
            verification = asyncio.ensure_future(
                complete_upload(self.registry, self.principal, upload_id, self.remote_addr)
            )
            VERIFYING.add(verification)
            verification.add_done_callback(VERIFYING.discard)
            verification.add_done_callback(log_failure)
        self.set_header("Upload-Offset", str(offset))
        self.set_status(204)
        self.finish()

    async def head(self, upload_id: str) -> None:
        received, total, _ = await self.read_db(upload_offsets, self.principal, upload_id)
        self.set_header("Upload-Offset", str(received))
        self.set_header("Upload-Length", str(total))
        self.finish()

    async def get(self, upload_id: str) -> None:
        self.write_json(await self.read_db(upload_status, self.principal, upload_id))

    async def delete(self, upload_id: str) -> None:
        if await self.write_db(terminate, self.principal, upload_id):
            self.registry.hashes.forget(upload_id)
            await asyncio.get_running_loop().run_in_executor(None, self.registry.store.discard_upload, upload_id)
        self.set_status(204)
        self.finish()


async def complete_upload(registry: Registry, principal: Principal, upload_id: str, remote_addr: str) -> None:
    """Verify, publish and record an upload whose last byte arrived (the client polls ``GET``).

    It counts as a request in flight, so that a registry told to stop lets it finish first."""
    database = registry.database
    registry.in_flight.count += 1
    try:
        try:
            completion = await database.write(uploads.begin_completion, upload_id)
        except RegistryError:
            return  # another request is completing it, or a writer is still open and will complete it
        try:
            blob, sif = await publish_completion(registry, completion)
            await database.write(record_tus_push, principal, upload_id, blob, sif, remote_addr)
        except RegistryError as error:
            await database.write(uploads.set_state, upload_id, "failed", error.message)
    finally:
        registry.in_flight.count -= 1


def log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("an upload's bookkeeping failed: %s", future.exception())
