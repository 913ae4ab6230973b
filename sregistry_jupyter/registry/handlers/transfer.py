"""Streaming image transfer for the native API.

Uploads are raw bytes streamed into the blob store while hashing, with the size and digest declared up
front; the push is authorised before the first byte is read, and nothing is recorded unless the bytes
match. Downloads stream the blob in large chunks and honour ``Range``, ``HEAD`` and ``If-None-Match``
(the ETag is the digest). Memory use is bounded by the chunk size, whatever the image size.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from tornado import iostream

from ... import models
from ..access import Principal
from ..context import Registry
from ..errors import Conflict, InsufficientStorage, NotFound, RegistryError, TooLarge
from ..names import validate_digest
from ..orm import Image
from ..ranges import parse_range
from ..services import collections, images, uploads
from ..sif import read_sif_metadata
from ..storage import BlobInfo, BlobStore
from . import zerocopy
from .api import ApiHandler
from .base import BaseHandler
from .serialize import image_model
from .streaming import ReceivesBlob, declared_size, storage_errors

READ_CHUNK = 1 << 20
log = logging.getLogger("sregistry_jupyter")


def sif_metadata(store: BlobStore, blob: BlobInfo) -> dict[str, Any] | None:
    return read_sif_metadata(lambda offset, length: store.read_at(blob.digest, offset, length), blob.size)


async def commit_blob(
    store: BlobStore, commit: Callable[..., BlobInfo], *args: Any
) -> tuple[BlobInfo, dict[str, Any] | None]:
    """Publish received bytes with ``commit(*args)`` and read the stored image's SIF metadata.

    Both fsync or read the disk, so they run in the executor, never on the event loop.
    """
    loop = asyncio.get_running_loop()
    with storage_errors():
        blob = await loop.run_in_executor(None, commit, *args)
    sif = await loop.run_in_executor(None, sif_metadata, store, blob)
    return blob, sif


async def publish_completion(
    registry: Registry, completion: uploads.Completion
) -> tuple[BlobInfo, dict[str, Any] | None]:
    """Verify and publish an upload session that ``begin_completion`` locked, on the heavy pool.

    A refusal the client can fix by waiting (writers still open, a full disk) reopens the session; any
    other failure (the bytes do not match their digest) marks it failed, with the reason.
    """
    database = registry.database
    try:
        with storage_errors():
            blob = await registry.run_heavy(uploads.verify_and_publish, registry.store, registry.hashes, completion)
    except (Conflict, InsufficientStorage):
        await database.write(uploads.reopen, completion.upload_id)
        raise
    except RegistryError as error:
        await database.write(uploads.set_state, completion.upload_id, "failed", error.message)
        raise
    except Exception:
        await database.write(uploads.set_state, completion.upload_id, "failed", "the upload could not be stored")
        raise
    sif = await registry.run_heavy(sif_metadata, registry.store, blob)
    return blob, sif


def image_list(session: Session, principal: Principal, collection_name: str, container_name: str) -> models.ImageList:
    collection = collections.get_visible(session, principal, collection_name)
    container = collections.get_container(session, collection, container_name)
    return models.ImageList.model_construct(items=[image_model(i) for i in images.list_images(session, container)])


def record_push(
    session: Session, principal: Principal, target: images.PushTarget, blob: BlobInfo, **extra: Any
) -> models.Image:
    return image_model(images.commit_push(session, principal, target, blob, **extra))


class ImagesHandler(ReceivesBlob, ApiHandler):
    """``GET`` lists a container's images; ``POST`` uploads one."""

    async def get(self, collection_name: str, container_name: str) -> None:
        self.write_json(await self.read_db(image_list, self.principal, collection_name, container_name))

    async def prepare(self) -> None:
        await super().prepare()
        if self.request.method != "POST":
            return
        collection_name, container_name = self.path_args
        self.digest = validate_digest(self.get_query_argument("digest", ""))
        self.size = declared_size(self.request.headers.get("Content-Length"), self.get_query_argument("size", None))
        if self.size > self.registry.max_upload_size:
            raise TooLarge(f"images may be at most {self.registry.max_upload_size} bytes")
        self.target = await self.read_db(
            images.authorize_push,
            self.principal,
            collection_name,
            container_name,
            self.get_query_arguments("tag"),
            self.arch_argument(),
        )
        self.writer = self.registry.store.writer(self.digest)
        self.receive_into(self.writer, self.size)

    async def post(self, collection_name: str, container_name: str) -> None:
        await self.received()
        blob, sif = await commit_blob(self.registry.store, self.writer.commit, self.digest, self.size)
        image = await self.write_db(
            record_push,
            self.principal,
            self.target,
            blob,
            sif=sif,
            description=self.get_query_argument("description", ""),
            remote_addr=self.remote_addr,
        )
        self.set_header("Location", self.request.path + "/" + image.digest)
        self.write_json(image, 201)


@dataclass(frozen=True)
class Download:
    """What a download response needs to know about its image, read before any byte is sent."""

    digest: str
    size: int
    filename: str
    pull: images.Pull

    @classmethod
    def of(cls, image: Image) -> Download:
        return cls(image.digest, image.size, f"{image.container.name}_{image.digest[7:19]}.sif", images.Pull.of(image))


def image_download(
    session: Session, principal: Principal, collection: str, container: str, ref: str, arch: str | None
) -> Download:
    return Download.of(images.resolve(session, principal, collection, container, ref, arch))


class DownloadHandler(ApiHandler):
    """``GET``/``HEAD`` the bytes of an image, with ranges."""

    async def download(self, collection_name: str, container_name: str, ref: str) -> Download:
        return await self.read_db(
            image_download, self.principal, collection_name, container_name, ref, self.arch_argument()
        )

    async def head(self, collection_name: str, container_name: str, ref: str) -> None:
        await self.send(await self.download(collection_name, container_name, ref))

    async def get(self, collection_name: str, container_name: str, ref: str) -> None:
        await self.send(await self.download(collection_name, container_name, ref))

    async def send(self, download: Download, share_id: int | None = None) -> None:
        """Send the image (or the requested range), counting a pull when a download starts at byte 0."""

        async def count() -> None:
            await self.count_pull(download.pull, share_id)

        await send_blob(self, download.digest, download.size, filename=download.filename, counted=count)


def etag_matches(header: str | None, etag: str) -> bool:
    """True if an ``If-None-Match`` list names ``etag`` (weakly compared) or is ``*``."""
    if header is None:
        return False
    listed = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in listed or etag in listed


async def send_blob(
    handler: BaseHandler,
    digest: str,
    size: int,
    *,
    filename: str | None = None,
    counted: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """The one download path of every surface (native, share links, shub, the library's ``/v1/blobs``).

    ETag is the digest; ``If-None-Match`` answers 304; one ``Range`` answers 206 with ``Content-Range``
    (416 if unsatisfiable), unless an ``If-Range`` names another ETag; ``HEAD`` sends the headers only.
    ``counted`` runs before the first byte of a download that starts at byte 0 (a pull).
    """
    request = handler.request
    etag = f'"{digest}"'
    handler.set_header("ETag", etag)
    handler.set_header("Accept-Ranges", "bytes")
    handler.set_header("Cache-Control", "private, max-age=0")
    if etag_matches(request.headers.get("If-None-Match"), etag):
        handler.set_status(304)
        await handler.finish()
        return
    span = None
    if_range = request.headers.get("If-Range")
    if if_range is None or if_range.strip() == etag:
        span = parse_range(request.headers.get("Range"), size)
    handler.set_header("Content-Type", "application/octet-stream")
    if filename:
        handler.set_header("Content-Disposition", f'attachment; filename="{filename}"')
    first, last = span if span is not None else (0, size - 1)
    if span is not None:
        handler.set_status(206)
        handler.set_header("Content-Range", f"bytes {first}-{last}/{size}")
    handler.set_header("Content-Length", str(last - first + 1))
    if request.method == "HEAD":
        await handler.finish()
        return
    if first == 0 and counted is not None:
        await counted()
    await stream_blob(handler, handler.registry.store, digest, first, last - first + 1)


def missing_blob(digest: str) -> NotFound:
    """The refusal for a blob the registry vouched for (a record, a signed link) that the store has lost."""
    log.error("the blob %s is recorded but missing from the blob store", digest)
    return NotFound("the stored bytes of this image are missing; the registry's staff can restore them")


async def stream_blob(handler: BaseHandler, store: BlobStore, digest: str, offset: int, length: int) -> None:
    """Write ``length`` bytes of a blob, so that memory stays flat and a slow disk never stalls other requests.

    A blob the store keeps as a local file goes by ``sendfile`` from a worker thread (``zerocopy``); other
    blobs are read chunk by chunk off the event loop, each written through Tornado and waited for to drain.
    The next chunk is read while the current one drains, so the store and the socket work at once, and a
    download holds at most two chunks. The headers go out on their own, since Tornado would copy the first
    chunk to append it to them.

    A blob the database records but the store has lost is the staff's to restore: the caller gets a 404
    that says so (before any byte is sent) and the log an error naming the digest.
    """
    loop = asyncio.get_running_loop()
    connection = zerocopy.http1_connection(handler)
    if connection is not None:
        try:
            fd = await loop.run_in_executor(None, store.open_file, digest)
        except FileNotFoundError:
            raise missing_blob(digest) from None
        if fd is not None:
            try:
                await zerocopy.send_file(handler, connection, fd, offset, length)
                await handler.finish()
            except iostream.StreamClosedError:
                pass
            return
    chunks = store.read(digest, offset, length, READ_CHUNK)
    reading = loop.run_in_executor(None, next, chunks, None)
    try:
        try:
            chunk = await reading
        except FileNotFoundError:
            raise missing_blob(digest) from None
        await handler.flush()
        while chunk is not None:
            reading = loop.run_in_executor(None, next, chunks, None)
            handler.write(chunk)
            await handler.flush()
            chunk = await reading
        await handler.finish()
    except iostream.StreamClosedError:
        return
    finally:
        close_when_read(reading, chunks)


def close_when_read(reading: asyncio.Future[bytes | None], chunks: Iterator[bytes]) -> None:
    """Close the store's reader, once the read in flight (if the client left during one) has ended: a
    generator cannot be closed while another thread runs it."""

    def close(done: asyncio.Future[bytes | None]) -> None:
        if not done.cancelled():
            done.exception()
        chunks.close()

    if reading.done():
        close(reading)
    else:
        reading.add_done_callback(close)
