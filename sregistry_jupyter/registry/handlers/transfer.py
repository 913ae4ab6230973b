"""Streaming image transfer for the native API.

Uploads are raw bytes streamed into the blob store while hashing, with the size and digest declared up
front; the push is authorised before the first byte is read, and nothing is recorded unless the bytes
match. Downloads stream the blob in large chunks and honour ``Range``, ``HEAD`` and ``If-None-Match``
(the ETag is the digest). Memory use is bounded by the chunk size, whatever the image size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tornado import iostream

from ..errors import TooLarge
from ..names import validate_digest
from ..orm import Image
from ..ranges import parse_range
from ..services import collections, images
from ..sif import read_sif_metadata
from ..storage import BlobInfo, BlobStore
from .api import ApiHandler
from .serialize import image_json
from .streaming import ReceivesBlob, declared_size

READ_CHUNK = 1 << 20


def sif_metadata(store: BlobStore, blob: BlobInfo) -> dict[str, Any] | None:
    return read_sif_metadata(lambda offset, length: store.read_at(blob.digest, offset, length), blob.size)


async def commit_blob(
    store: BlobStore, commit: Callable[..., BlobInfo], *args: Any
) -> tuple[BlobInfo, dict[str, Any] | None]:
    """Publish received bytes with ``commit(*args)`` and read the stored image's SIF metadata.

    Both fsync or read the disk, so they run in the executor, never on the event loop.
    """
    loop = asyncio.get_running_loop()
    blob = await loop.run_in_executor(None, commit, *args)
    sif = await loop.run_in_executor(None, sif_metadata, store, blob)
    return blob, sif


class ImagesHandler(ReceivesBlob, ApiHandler):
    """``GET`` lists a container's images; ``POST`` uploads one."""

    def get(self, collection_name: str, container_name: str) -> None:
        collection = collections.get_visible(self.db, self.principal, collection_name)
        container = collections.get_container(self.db, collection, container_name)
        self.write_json({"items": [image_json(i) for i in images.list_images(self.db, container)]})

    async def prepare(self) -> None:
        await super().prepare()
        if self.request.method != "POST":
            return
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
            self.arch_argument(),
        )
        self.db.rollback()
        self.writer = self.registry.store.writer()
        self.receive_into(self.writer, self.size)

    async def post(self, collection_name: str, container_name: str) -> None:
        await self.received()
        blob, sif = await commit_blob(self.registry.store, self.writer.commit, self.digest, self.size)
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


class DownloadHandler(ApiHandler):
    """``GET``/``HEAD`` the bytes of an image, with ranges."""

    def image(self, collection_name: str, container_name: str, ref: str) -> Image:
        return images.resolve(self.db, self.principal, collection_name, container_name, ref, self.arch_argument())

    def head(self, collection_name: str, container_name: str, ref: str) -> None:
        self.send_head(self.image(collection_name, container_name, ref))

    async def get(self, collection_name: str, container_name: str, ref: str) -> None:
        image = self.image(collection_name, container_name, ref)
        await self.send(
            image, lambda: images.record_pull(self.db, self.principal, image, self.remote_addr, self.registry.limiter)
        )

    def send_head(self, image: Image) -> None:
        if self.start_response(image) is not None:
            self.finish()

    async def send(self, image: Image, record_download: Callable[[], object]) -> None:
        """Stream the image (or the requested range), counting a download when it starts at byte 0."""
        span = self.start_response(image)
        if span is None:
            return
        first, last = span
        if first == 0:
            record_download()
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
