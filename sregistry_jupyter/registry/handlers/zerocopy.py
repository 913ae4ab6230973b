"""Sending a blob that is a local file with ``sendfile(2)`` from a worker thread, so the event loop moves no bytes.

Tornado writes a response body on the loop thread: each chunk is read into memory, then copied into the socket by
the loop, and on a busy machine every loop turn that copies a MiB for each of dozens of downloads keeps all other
requests (even ``GET /version``) waiting. A blob the store keeps as a local file needs none of that. Once Tornado
has sent the headers, a worker thread hands file pages to the kernel with ``os.sendfile`` on a duplicate of the
connection's socket, until the socket is full or ``SEND_STEP`` bytes have gone; the loop then waits for the socket
to drain, without a thread, and schedules the next step. No chunk is ever in memory, and the worker holds the GIL
for a few microseconds a step, so neither the loop nor the threads storing uploads wait for it.

The socket is non-blocking, so a slow client never holds a thread; a slow disk holds one, never the loop. The
duplicate descriptor keeps the socket the worker writes to valid even if Tornado closes the connection meanwhile
(a client hanging up), so a step can never write into a descriptor number that another connection has reused.

Tornado counts the body bytes it writes against ``Content-Length`` and refuses to finish a response it thinks
short. These bytes bypass it, so once they have all gone its count (``_expected_content_remaining`` of its
HTTP/1 connection) is set to match. ``http1_connection`` finds that connection, or None when the request came
some other way (or over TLS, which the kernel cannot apply), in which case the caller streams the blob through
Tornado as before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading

from tornado import iostream
from tornado.http1connection import HTTP1Connection
from tornado.web import RequestHandler

SEND_STEP = 4 << 20
STALL_CHECK = 5.0
log = logging.getLogger("sregistry_jupyter")


class ShortFile(Exception):
    """The file ended before the range the headers promised (the blob store lost bytes under us)."""


def http1_connection(handler: RequestHandler) -> HTTP1Connection | None:
    """Tornado's HTTP/1 connection under ``handler``'s request (behind the connection guard's wrapper, whose
    ``connection`` it is), if its byte count can be kept; else None."""
    connection = handler.request.connection
    inner = getattr(connection, "connection", connection)
    if not isinstance(inner, HTTP1Connection) or not hasattr(inner, "_expected_content_remaining"):
        return None
    if inner.stream is None or inner.stream.closed() or isinstance(inner.stream, iostream.SSLIOStream):
        return None  # TLS encrypts in user space: file pages handed to the kernel would go out in the clear
    return inner


class Descriptors:
    """The file and the duplicate socket of one download, closed only when no worker step can use them.

    The loop gives them up with ``close`` (the download ended, or its task was cancelled mid-step); a step
    still running then closes them itself when it returns, and a step not yet started does nothing. Closed
    while a worker still wrote, their numbers could be reused by another connection and receive its bytes.
    """

    def __init__(self, sock_fd: int, file_fd: int) -> None:
        self.sock_fd = sock_fd
        self.file_fd = file_fd
        self._lock = threading.Lock()
        self._running = False
        self._given_up = False

    def step(self, offset: int, count: int) -> tuple[int, bool]:
        """On a worker: send up to ``count`` bytes of the file at ``offset``; how many went, and whether the
        socket is full. ``sendfile`` releases the GIL and copies nothing through user space."""
        with self._lock:
            if self._given_up:
                return 0, False
            self._running = True
        try:
            return send_range(self.sock_fd, self.file_fd, offset, count)
        finally:
            with self._lock:
                self._running = False
                if self._given_up:
                    self._close()

    def close(self) -> None:
        with self._lock:
            self._given_up = True
            if not self._running:
                self._close()

    def _close(self) -> None:
        os.close(self.sock_fd)
        os.close(self.file_fd)


def send_range(sock_fd: int, file_fd: int, offset: int, count: int) -> tuple[int, bool]:
    """``sendfile`` until ``count`` bytes have gone or the non-blocking socket is full."""
    sent = 0
    while sent < count:
        try:
            step = os.sendfile(sock_fd, file_fd, offset + sent, count - sent)
        except BlockingIOError:
            return sent, True
        if step == 0:
            raise ShortFile(f"the file ended {count - sent} bytes early, at byte {offset + sent}")
        sent += step
    return sent, False


async def writable(loop: asyncio.AbstractEventLoop, sock_fd: int, stream: iostream.IOStream) -> None:
    """Wait until the socket can take more bytes; StreamClosedError once Tornado has closed the connection
    (a peer that reads nothing would otherwise be waited for forever, its socket kept open by our duplicate)."""
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(sock_fd, wake)
    try:
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(ready), STALL_CHECK)
                return
            except TimeoutError:
                if stream.closed():
                    raise iostream.StreamClosedError() from None
    finally:
        loop.remove_writer(sock_fd)


async def send_file(
    handler: RequestHandler, connection: HTTP1Connection, file_fd: int, offset: int, length: int
) -> None:
    """Send the headers through Tornado, then ``length`` bytes of ``file_fd`` from ``offset`` by ``sendfile``;
    ``file_fd`` is closed afterwards.

    StreamClosedError if the client went away (the connection is then closed, as Tornado would); a file that
    ends early closes the connection too, since the client was promised more bytes than there are.
    """
    loop = asyncio.get_running_loop()
    stream = connection.stream
    try:
        await handler.flush()
        if stream.closed():
            raise iostream.StreamClosedError()
        held = Descriptors(os.dup(stream.socket.fileno()), file_fd)
    except BaseException:
        os.close(file_fd)
        raise
    try:
        while length > 0:
            sent, full = await loop.run_in_executor(None, held.step, offset, min(length, SEND_STEP))
            offset += sent
            length -= sent
            if full:
                await writable(loop, held.sock_fd, stream)
    except (BrokenPipeError, ConnectionResetError):
        stream.close()
        raise iostream.StreamClosedError() from None
    except ShortFile as error:
        log.error("closing a download: %s", error)
        stream.close()
        raise iostream.StreamClosedError() from None
    finally:
        held.close()
    connection._expected_content_remaining = 0
