"""Streaming image transfer for the native API.

Uploads are raw bytes streamed into the blob store while hashing, with the size and digest declared up
front; the push is authorised before the first byte is read, and nothing is recorded unless the bytes
match. Downloads stream the blob in large chunks and honour ``Range``, ``HEAD`` and ``If-None-Match``
(the ETag is the digest). Memory use is bounded by the chunk size, whatever the image size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from tornado import iostream

from ..errors import InvalidInput, LengthRequired, TooLarge
from ..names import validate_digest
from ..orm import Image
from ..ranges import parse_range
from ..services import collections, images
from ..sif import read_sif_metadata
from ..storage import BlobInfo, BlobStore, BlobWriter
from .api import ApiHandler
from .serialize import image_json

WRITE_BATCH = 4 << 20
READ_CHUNK = 1 << 20


def declared_size(content_length: str | None, size_argument: str | None) -> int:
    """The upload's size, from ``?size=`` or ``Content-Length`` (which must agree if both are given)."""
    values = set()
    for raw in (content_length, size_argument):
        if raw is not None:
            if not raw.isdigit():
                raise InvalidInput(f"invalid size {raw!r}")
            values.add(int(raw))
    if not values:
        raise LengthRequired("send Content-Length or ?size= with the upload")
    if len(values) > 1:
        raise InvalidInput("Content-Length and ?size= disagree")
    return values.pop()


class OffloadedWrites:
    """Feeds a blob writer from the event loop, hashing and writing each batch on a worker thread.

    ``hashlib`` and ``os.write`` release the GIL, so the loop receives the next batch while the previous
    one is stored: on two cores that roughly halves the CPU time an upload spends on the loop thread.
    At most one batch is being stored and one collected; ``add`` hands back an awaitable when reading must
    wait for storage (Tornado then stops reading the socket), which keeps memory bounded by two batches.
    """

    def __init__(self, writer: BlobWriter, batch_size: int = WRITE_BATCH) -> None:
        self.writer = writer
        self.batch_size = batch_size
        self._chunks: list[bytes] = []
        self._collected = 0
        self._storing: asyncio.Future[None] | None = None

    def add(self, chunk: bytes) -> Awaitable[None] | None:
        self._chunks.append(chunk)
        self._collected += len(chunk)
        if self._collected < self.batch_size:
            return None
        return self._hand_off()

    async def drain(self) -> None:
        """Store everything received so far; raises what storing raised."""
        await self._hand_off()
        await self._wait_for_storage()

    def cancel(self) -> None:
        """Discard the upload, once the batch in flight (whose thread still uses the file) is done."""
        if self._storing is None or self._storing.done():
            self._discard(self._storing)
        else:
            self._storing.add_done_callback(self._discard)

    def _discard(self, storing: asyncio.Future[None] | None) -> None:
        """Cancel the writer; a failure to store the last batch is moot once the upload is discarded."""
        if storing is not None and not storing.cancelled():
            storing.exception()
        self.writer.cancel()

    async def _hand_off(self) -> None:
        await self._wait_for_storage()
        if self._chunks:
            batch, self._chunks, self._collected = self._chunks, [], 0
            self._storing = asyncio.get_running_loop().run_in_executor(None, self._store, batch)

    async def _wait_for_storage(self) -> None:
        if self._storing is not None:
            await self._storing
            self._storing = None

    def _store(self, batch: list[bytes]) -> None:
        for chunk in batch:
            self.writer.write(chunk)


def sif_metadata(store: BlobStore, blob: BlobInfo) -> dict[str, Any] | None:
    return read_sif_metadata(lambda offset, length: store.read_at(blob.digest, offset, length), blob.size)


class ImagesHandler(ApiHandler):
    """``GET`` lists a container's images; ``POST`` uploads one."""

    writes: OffloadedWrites | None = None

    def get(self, collection_name: str, container_name: str) -> None:
        collection = collections.get_visible(self.db, self.principal, collection_name)
        container = collections.get_container(self.db, collection, container_name)
        self.write_json({"items": [image_json(i) for i in images.list_images(self.db, container)]})

    async def prepare(self) -> None:
        if self.request.method != "POST":
            await super().prepare()
            return
        self.registry.in_flight.count += 1
        self._counted = True
        collection_name, container_name = self.path_args
        self.digest = validate_digest(self.get_query_argument("digest", ""))
        self.size = declared_size(self.request.headers.get("Content-Length"), self.get_query_argument("size", None))
        if self.size > self.registry.max_upload_size:
            raise TooLarge(f"images may be at most {self.registry.max_upload_size} bytes")
        self.target = images.authorize_push(
            self.db,
            self.principal,
            collection_name,
            container_name,
            self.get_query_arguments("tag"),
            self.get_query_argument("arch", None) or None,
        )
        self.db.rollback()
        self.request.connection.set_max_body_size(self.size)
        self.writes = OffloadedWrites(self.registry.store.writer())

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.writes is None:
            super().data_received(chunk)
            return None
        return self.writes.add(chunk)

    async def post(self, collection_name: str, container_name: str) -> None:
        assert self.writes is not None
        await self.writes.drain()
        store = self.registry.store
        loop = asyncio.get_running_loop()
        blob = await loop.run_in_executor(None, self.writes.writer.commit, self.digest, self.size)
        sif = await loop.run_in_executor(None, sif_metadata, store, blob)
        image = images.commit_push(
            self.db,
            self.principal,
            self.target,
            blob,
            sif=sif,
            description=self.get_query_argument("description", ""),
            remote_addr=self.remote_addr,
        )
        self.set_header("Location", self.request.path + "/" + image.digest)
        self.write_json(image_json(image), 201)

    def on_connection_close(self) -> None:
        if self.writes is not None and not self.request._body_future.done():
            self.writes.cancel()
        super().on_connection_close()

    def on_finish(self) -> None:
        if self.writes is not None and not self.writes.writer.closed and self.request._body_future.done():
            self.writes.cancel()
        super().on_finish()


class DownloadHandler(ApiHandler):
    """``GET``/``HEAD`` the bytes of an image, with ranges."""

    def image(self, collection_name: str, container_name: str, ref: str) -> Image:
        return images.resolve(self.db, self.principal, collection_name, container_name, ref, self.arch_argument())

    def head(self, collection_name: str, container_name: str, ref: str) -> None:
        image = self.image(collection_name, container_name, ref)
        span = self.start_response(image)
        if span is not None:
            self.finish()

    async def get(self, collection_name: str, container_name: str, ref: str) -> None:
        image = self.image(collection_name, container_name, ref)
        span = self.start_response(image)
        if span is None:
            return
        first, last = span
        if first == 0:
            images.record_pull(self.db, self.principal, image, self.remote_addr)
        digest = image.digest
        self.db.close()
        await stream_blob(self, self.registry.store, digest, first, last - first + 1)

    def start_response(self, image: Image) -> tuple[int, int] | None:
        """Set the headers; None if the response is already complete (304)."""
        etag = f'"{image.digest}"'
        self.set_header("ETag", etag)
        self.set_header("Accept-Ranges", "bytes")
        self.set_header("Cache-Control", "private, max-age=0")
        if etag in [t.strip() for t in self.request.headers.get("If-None-Match", "").split(",")]:
            self.set_status(304)
            self.finish()
            return None
        size = image.size
        span = None
        if_range = self.request.headers.get("If-Range")
        if if_range is None or if_range.strip() == etag:
            span = parse_range(self.request.headers.get("Range"), size)
        self.set_header("Content-Type", "application/octet-stream")
        filename = f"{image.container.name}_{image.digest[7:19]}.sif"
        self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        if span is None:
            self.set_header("Content-Length", str(size))
            return 0, size - 1
        first, last = span
        self.set_status(206)
        self.set_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.set_header("Content-Length", str(last - first + 1))
        return first, last


async def stream_blob(handler: ApiHandler, store: BlobStore, digest: str, offset: int, length: int) -> None:
    """Write ``length`` bytes of a blob, waiting for each chunk to drain so memory stays flat."""
    try:
        for chunk in store.read(digest, offset, length, READ_CHUNK):
            handler.write(chunk)
            await handler.flush()
        await handler.finish()
    except iostream.StreamClosedError:
        return
