"""Receiving a request body straight into blob storage.

Handlers that take image bytes mix this in: ``receive_into`` is called from ``prepare`` once the request
is authorised, after which the body is written in large batches as it arrives (memory stays bounded
whatever the size) and a connection cut before the end discards everything written.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import Awaitable, Iterator
from typing import Protocol

from ..errors import InsufficientStorage, InvalidInput, LengthRequired

WRITE_BATCH = 4 << 20


class Sink(Protocol):
    """A blob writer or a part writer: takes bytes, and can be abandoned."""

    def write(self, data: bytes | memoryview) -> None: ...

    def cancel(self) -> None: ...


def declared_size(content_length: str | None, size_argument: str | None = None) -> int:
    """The body's size, from ``Content-Length`` or ``?size=`` (which must agree if both are given)."""
    values = set()
    for raw in (content_length, size_argument):
        if raw is not None:
            if not raw.isdigit():
                raise InvalidInput(f"invalid size {raw!r}")
            values.add(int(raw))
    if not values:
        raise LengthRequired("send Content-Length (or ?size=) with the upload")
    if len(values) > 1:
        raise InvalidInput("Content-Length and ?size= disagree")
    return values.pop()


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Turn a full disk (or quota) under the blob store into a 507 that says so, in any surface's envelope."""
    try:
        yield
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientStorage(
                "the registry's storage is full, so nothing was stored; try again later or tell the registry's staff"
            ) from None
        raise


class OffloadedWrites:
    """Feeds a blob writer from the event loop, hashing and writing each batch on a worker thread.

    ``hashlib`` and ``os.write`` release the GIL, so the loop receives the next batch while the previous
    one is stored: on two cores that roughly halves the CPU time an upload spends on the loop thread.
    At most one batch is being stored and one collected; ``add`` hands back an awaitable when reading must
    wait for storage (Tornado then stops reading the socket), which keeps memory bounded by two batches.
    Once storing has failed (a full disk), the rest of the body is read and dropped, so that the client
    receives the refusal instead of a reset connection; ``drain`` raises the failure.
    """

    def __init__(self, writer: Sink, batch_size: int = WRITE_BATCH) -> None:
        self.writer = writer
        self.batch_size = batch_size
        self._chunks: list[bytes] = []
        self._collected = 0
        self._storing: asyncio.Future[None] | None = None
        self._keeping: asyncio.Future[None] | None = None
        self._failed: Exception | None = None

    def add(self, chunk: bytes) -> Awaitable[None] | None:
        if self._failed is not None:
            return None
        self._chunks.append(chunk)
        self._collected += len(chunk)
        if self._collected < self.batch_size:
            return None
        return self._hand_off_unless_failed()

    async def drain(self) -> None:
        """Store everything received so far; raises what storing raised."""
        if self._failed is not None:
            raise self._failed
        await self._hand_off()
        await self._wait_for_storage()

    async def _hand_off_unless_failed(self) -> None:
        try:
            await self._hand_off()
        except Exception as error:
            self._failed = error
            self._chunks, self._collected = [], 0

    def cancel(self) -> None:
        """Discard the upload, once the batch in flight (whose thread still uses the file) is done.

        A sink that ``keeps_partial`` (a resumable upload) first stores every byte that arrived."""
        if getattr(self.writer, "keeps_partial", False) and self._chunks:
            batch, self._chunks, self._collected = self._chunks, [], 0
            self._keeping = asyncio.ensure_future(self._keep(batch))
            return
        if self._storing is None or self._storing.done():
            self._discard(self._storing)
        else:
            self._storing.add_done_callback(self._discard)

    async def _keep(self, batch: list[bytes]) -> None:
        try:
            await self._wait_for_storage()
            await asyncio.get_running_loop().run_in_executor(None, self._store, batch)
        except Exception:
            pass
        finally:
            self.writer.cancel()

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


class ReceivesBlob:
    """Mixin for a BaseHandler whose body goes into a blob-store writer."""

    streams_body = True
    writes: OffloadedWrites | None = None

    def receive_into(self, sink: Sink, size: int) -> None:
        """Start streaming the body (of exactly ``size`` bytes) into ``sink``."""
        self.request.connection.set_max_body_size(size)  # type: ignore[attr-defined]
        self.writes = OffloadedWrites(sink)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.writes is None:
            return super().data_received(chunk)  # type: ignore[misc]
        return self.writes.add(chunk)

    async def received(self) -> None:
        """Wait until every byte of the body is stored; call at the start of the verb method.

        A full disk is a 507 in the surface's envelope, like every other refusal."""
        if self.writes is not None:
            with storage_errors():
                await self.writes.drain()

    def on_finish(self) -> None:
        """Discard whatever was not committed; ``BaseHandler`` also calls this when a client hangs up mid-body."""
        if self.writes is not None:
            self.writes.cancel()
        super().on_finish()  # type: ignore[misc]
