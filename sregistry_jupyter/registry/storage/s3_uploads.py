"""The writers of the S3 store: bytes become S3 multipart uploads as they arrive.

A writer (a whole upload) or a part writer (bytes of an upload in several requests, from ``offset`` on)
buffers whole S3 parts, sends each on the store's bounded pool while the next fills, and hashes as it
goes; see ``s3`` for the layout in the bucket and why the parts of an upload must arrive in order.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import concurrent.futures
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import Conflict, InvalidInput
from ..names import is_digest
from .base import BlobInfo, BlobWriter, PartWriter
from .resumable import ResumableSHA256

if TYPE_CHECKING:
    from .s3 import S3BlobStore

MIN_PART_SIZE = 5 << 20


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _View:
    """A read-only file over a buffer, so a part is sent to S3 without copying it."""

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size is None or size < 0 else min(len(self._data), self._position + size)
        chunk = bytes(self._data[self._position : end])
        self._position = end
        return chunk

    def seek(self, position: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._position, 2: len(self._data)}[whence]
        self._position = max(0, base + position)
        return self._position

    def tell(self) -> int:
        return self._position

    def __len__(self) -> int:
        return len(self._data)


class _Parts:
    """Feeds one S3 multipart upload: up to ``store.parts_in_flight`` parts uploading while the next fills.

    ``plan(i)`` is the length of the i-th part sent from here. An upload's memory is that many parts plus
    the one filling, whatever its size; part buffers come from the store's few spares and go back to them,
    so the allocator is not left holding a freed part for every part sent. A writer that gets ahead of the
    store waits, and so does its client.
    """

    def __init__(
        self, store: S3BlobStore, key: str, mpu_id: str, first_number: int, plan: Callable[[int], int]
    ) -> None:
        self.store, self.key, self.mpu_id = store, key, mpu_id
        self.first_number = self.number = first_number
        self.plan = plan
        self.done: list[dict[str, Any]] = []
        self._buffer = bytearray()
        self._filled = 0
        self._growing = False
        self._sending: collections.deque[tuple[concurrent.futures.Future[dict[str, Any]], bytearray]] = (
            collections.deque()
        )

    def add(self, data: memoryview) -> None:
        """Append bytes; each part is sent as soon as it is full."""
        while data:
            length = self.plan(self.number - self.first_number)
            if not self._filled:
                self._new_buffer(length)
            taken = data[: length - self._filled]
            if self._growing:
                self._buffer += taken
            else:
                self._buffer[self._filled : self._filled + len(taken)] = taken
            self._filled += len(taken)
            data = data[len(taken) :]
            if self._filled == length:
                self._send_buffer()

    def _new_buffer(self, length: int) -> None:
        """A spare of the store if one is large enough; else, for an upload's first part, one that grows
        as bytes come (a small blob costs its size only), and a whole part's for the others."""
        spare = self.store.spare_buffer(length)
        self._growing = spare is None and self.number == self.first_number
        self._buffer = spare if spare is not None else bytearray() if self._growing else bytearray(length)

    def finish(self) -> list[dict[str, Any]]:
        """Send the rest (an empty part if nothing was sent at all) and wait; the parts sent, in order."""
        if self._filled or self.number == self.first_number:
            self._send_buffer()
        self._wait(0)
        return self.done

    def settle(self) -> None:
        """Wait for the parts in flight, whatever became of them (before an abort)."""
        concurrent.futures.wait([future for future, _ in self._sending])
        self._sending.clear()

    def _send_buffer(self) -> None:
        self._wait(self.store.parts_in_flight - 1)
        view = memoryview(self._buffer)[: self._filled]
        self._sending.append((self.store.pool.submit(self._send, self.number, view), self._buffer))
        self.number += 1
        self._buffer, self._filled = bytearray(), 0

    def _wait(self, in_flight: int) -> None:
        """Collect sent parts, oldest first, until at most ``in_flight`` are still uploading."""
        while len(self._sending) > in_flight:
            future, buffer = self._sending.popleft()
            self.done.append(future.result())
            self.store.keep_spare(buffer)

    def _send(self, number: int, view: memoryview) -> dict[str, Any]:
        answer = self.store.client.upload_part(
            Bucket=self.store.bucket,
            Key=self.key,
            UploadId=self.mpu_id,
            PartNumber=number,
            Body=_View(view),
            ContentLength=len(view),
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}


class S3BlobWriter(BlobWriter):
    """One upload, as an S3 multipart upload started at the first byte (never on the event loop)."""

    def __init__(self, store: S3BlobStore, digest: str | None) -> None:
        super().__init__()
        self._store = store
        self._id = uuid.uuid4().hex
        self._key = store.blob_key(digest) if digest is not None and is_digest(digest) else store.staging_key(self._id)
        self._parts: _Parts | None = None
        self._lock = threading.Lock()

    def _start(self) -> _Parts:
        if self._parts is None:
            mpu_id = self._store.create_multipart(self._key)
            self._store.put_marker(self._id, {"key": self._key, "mpu": mpu_id, "size": 0})
            self._parts = _Parts(self._store, self._key, mpu_id, 1, lambda _: self._store.part_size)
        return self._parts

    def _write(self, data: bytes | memoryview) -> None:
        with self._lock:
            self._start().add(memoryview(data).cast("B"))

    def _publish(self, digest: str) -> BlobInfo:
        with self._lock:
            parts = self._start()
            store = self._store
            store.complete_multipart(self._key, parts.mpu_id, parts.finish())
            if self._key != store.blob_key(digest):
                store.copy_into_place(self._key, digest)
                store.client.delete_object(Bucket=store.bucket, Key=self._key)
            store.delete_marker(self._id)
        info = store.stat(digest)
        if info is None:
            raise RuntimeError(f"{digest} vanished from the bucket as it was stored")
        return info

    def _discard(self) -> None:
        if _on_event_loop():
            self._store.pool.submit(self._abort)
        else:
            self._abort()

    def _abort(self) -> None:
        with self._lock:
            if self._parts is not None:
                self._parts.settle()
                self._store.abort_multipart(self._key, self._parts.mpu_id)
                self._store.delete_marker(self._id)


def _planned_lengths(length: int, part_size: int) -> list[int]:
    """S3 part lengths for ``length`` bytes: ``part_size`` each, the remainder merged into the last one, so
    that no part but the very last of an upload is smaller than ``part_size``."""
    count = max(1, length // part_size)
    return [part_size] * (count - 1) + [length - part_size * (count - 1)]


class S3PartWriter(PartWriter):
    """Bytes of a multipart upload from ``offset`` on, which must be where the upload's bytes end.

    It resumes the whole file's hash from the upload's marker. Once its last byte is written it sends
    the last S3 part and saves the marker (hash, parts, bytes received) at once, on the thread writing
    it, so ``finish`` (called on the event loop) has nothing left to do. The marker is saved only if no
    other writer changed it meanwhile (a conditional PUT), so two requests racing with the same bytes
    cannot both extend the upload.
    """

    def __init__(self, store: S3BlobStore, upload_id: str, offset: int, length: int) -> None:
        super().__init__(offset, length)
        self._store, self._upload_id = store, upload_id
        self._marker: dict[str, Any] = {}
        self._marker_etag = ""
        self._whole: ResumableSHA256 | None = None
        self._parts: _Parts | None = None
        self._lengths = _planned_lengths(length, store.part_size)
        self._lock = threading.Lock()
        self._saved = False
        self._released = False

    def _begin(self) -> _Parts:
        if self._parts is None:
            marker, etag = self._store.get_marker(self._upload_id)
            if marker.get("received") != self.offset:
                raise Conflict(
                    f"parts must arrive in order: the next part of this upload starts at byte {marker.get('received')}"
                )
            if self.length < MIN_PART_SIZE and self.offset + self.length != marker.get("size"):
                raise InvalidInput("each part of an upload to S3 but the last must be at least 5 MiB")
            self._marker, self._marker_etag = marker, etag
            self._whole = ResumableSHA256.from_state(base64.b64decode(marker["hash"]))
            lengths = self._lengths
            first = len(marker["parts"]) + 1
            self._parts = _Parts(
                self._store, marker["key"], marker["mpu"], first, lambda i: lengths[min(i, len(lengths) - 1)]
            )
        return self._parts

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        if not view:
            return
        with self._lock:
            parts = self._begin()
            self._whole.update(view)  # type: ignore[union-attr]
            parts.add(view)
            if self.size + len(view) == self.length:
                self._save(parts)

    def _save(self, parts: _Parts) -> None:
        done = parts.finish()
        marker = dict(self._marker)
        marker["received"] = self.offset + self.length
        marker["hash"] = base64.b64encode(self._whole.state()).decode()  # type: ignore[union-attr]
        marker["parts"] = [*marker["parts"], *done]
        self._store.put_marker(self._upload_id, marker, if_match=self._marker_etag)
        self._saved = True

    def _finish(self) -> None:
        """Save the marker if no byte was ever written (an empty part), and let the upload be published."""
        with self._lock:
            try:
                if self.size == self.length and not self._saved:
                    self._save(self._begin())
            finally:
                self._release()

    def cancel(self) -> None:
        """Stop here: nothing of this part is kept (``size`` says so), and the upload goes on from where
        the part began, with a retry of it or, for a resumable upload, from the offset it is told.

        From the event loop the wait for a part in flight is handed to the store's pool."""
        if not self._saved:
            self.size = 0
        if _on_event_loop():
            self._store.pool.submit(self._settle)
        else:
            self._settle()

    def _settle(self) -> None:
        with self._lock:
            if self._parts is not None and not self._saved:
                self._parts.settle()
            self._release()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._store.writer_closed(self._upload_id)
