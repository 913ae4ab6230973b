"""Receiving a request body straight into blob storage.

Handlers that take image bytes mix this in: ``receive_into`` is called from ``prepare`` once the request
is authorised, after which the body is written in large batches as it arrives (memory stays bounded
whatever the size) and a connection cut before the end discards everything written.
"""

from __future__ import annotations

from typing import Protocol

from ..errors import InvalidInput, LengthRequired

WRITE_BATCH = 4 << 20


class Sink(Protocol):
    def write(self, data: bytes | memoryview) -> None: ...


class Discardable(Protocol):
    def __call__(self) -> None: ...


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


class ReceivesBlob:
    """Mixin for a BaseHandler whose body goes into a blob-store writer."""

    streams_body = True
    _sink: Sink | None = None
    _discard: Discardable | None = None
    _pending: bytearray

    def receive_into(self, sink: Sink, discard: Discardable, size: int) -> None:
        self.request.connection.set_max_body_size(size)  # type: ignore[attr-defined]
        self._sink = sink
        self._discard = discard
        self._pending = bytearray()

    @property
    def receiving(self) -> bool:
        return self._sink is not None

    def data_received(self, chunk: bytes) -> None:
        if self._sink is None:
            super().data_received(chunk)  # type: ignore[misc]
            return
        self._pending += chunk
        if len(self._pending) >= WRITE_BATCH:
            self._sink.write(self._pending)
            self._pending.clear()

    def flush_received(self) -> None:
        """Write what is still batched; call at the start of the verb method."""
        if self._sink is not None and self._pending:
            self._sink.write(self._pending)
            self._pending.clear()

    def on_connection_close(self) -> None:
        body = getattr(self.request, "_body_future", None)  # type: ignore[attr-defined]
        if self._discard is not None and body is not None and not body.done():
            self._discard()
        super().on_connection_close()  # type: ignore[misc]

    def on_finish(self) -> None:
        if self._discard is not None:
            self._discard()
        super().on_finish()  # type: ignore[misc]
