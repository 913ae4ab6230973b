"""Connection-level defences, so that no slow or greedy client holds the server: a deadline for a request's
headers, a minimum rate for its body, and a cap on the connections one client address keeps open.

Tornado's own knobs are total times (``idle_connection_timeout``, ``body_timeout``), and a total time cannot
tell a slow client from a stalled one: a 20 GB push over a campus link may rightly take hours, while a client
that sends one byte a second should be let go within a minute. So headers get a deadline (they are a few
hundred bytes) but bodies get a minimum rate, averaged over a sliding window: a body must keep arriving at
``body_min_rate`` bytes a second over any ``body_rate_window`` seconds, however long it is in all. Time the
registry itself spends not reading (identifying the caller before the body, or storage falling behind)
is never counted against the client: the window starts again once the registry reads again.

A body that falls below the rate gets ``408 Request Timeout`` if nothing has been answered yet, then the
connection is closed. The handler hears of it as of any cut connection, so a partial upload is discarded
exactly as when the client hangs up.

The connection cap counts TCP connections by the address they come from (an IPv6 /64 counts as one address,
as for the request limits), so it sees a reverse proxy's address, not its clients': addresses in
``exempt_networks`` (``RegistryApp.trusted_proxies`` and ``limit_exempt_networks``) are not capped, and the
proxy caps its clients itself (nginx ``limit_conn``). A connection over the cap is answered at once with ``429 Too Many
Requests`` and ``Retry-After``, before its request is read, and closed: 429 because the refusal is about this
client, which may retry once its own connections end (503 would tell load balancers and monitors that the
registry is down, which it is not for anyone else); answered rather than dropped so that the client can
say why. The answer comes before the request, so the surface is unknown and its body carries every
surface's error fields (native ``code``/``message``, library ``error``, shub ``detail``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tornado import httputil, iostream
from tornado.http1connection import HTTP1Connection, HTTP1ServerConnection
from tornado.httpserver import HTTPServer

from .errors import RequestTimeout, TooManyRequests
from .services.limits import IPNetwork, address_key

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from tornado.web import Application

    from .context import Registry

log = logging.getLogger("sregistry_jupyter")

CHUNK_SIZE = 1 << 20
LINGER = 2.0
REFUSAL_RETRY_AFTER = 5
SAMPLES_PER_WINDOW = 10
MIN_TICK = 0.05


@dataclass(frozen=True)
class ConnectionLimits:
    """The configured defences (``RegistryApp`` traits of the same names); 0 switches one off."""

    header_timeout: float = 10.0
    body_min_rate: int = 64 << 10
    body_rate_window: float = 30.0
    max_connections_per_address: int = 64
    exempt_networks: tuple[IPNetwork, ...] = ()

    def exempt(self, address: str) -> bool:
        """Whether connections from ``address`` are left uncapped (a trusted proxy, an exempt network)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.exempt_networks)


def early_answer(status: int, reason: str, code: str, message: str, headers: dict[str, str]) -> bytes:
    """A complete ``Connection: close`` response written before (or instead of) the application's, whose
    body any of the registry's clients can read an error message from."""
    body = json.dumps(
        {"code": code, "message": message, "detail": message, "error": {"code": status, "message": message}}
    ).encode()
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def close_after(stream: iostream.IOStream, answer: bytes) -> None:
    """Send ``answer``, end our side of the connection, and close it once the client has had time to read it.

    Closing a socket with unread input makes the kernel reset the connection, and a reset can destroy the
    answer before the client reads it; so the answer is followed by a FIN at once, and the socket itself is
    closed (resetting whatever the client still sends) only ``LINGER`` seconds later.
    """

    def shut(_: Any = None) -> None:
        try:
            stream.socket.shutdown(socket.SHUT_WR)
        except (OSError, AttributeError):
            stream.close()
            return
        stream.io_loop.call_later(LINGER, stream.close)

    try:
        stream.write(answer).add_done_callback(shut)
    except iostream.StreamClosedError:
        stream.close()


class AnswerWatch(httputil.HTTPConnection):
    """The request's connection as the application sees it, noting whether its response has begun, so that
    a refusal from the server itself is never written into the middle of the application's answer."""

    def __init__(self, connection: HTTP1Connection) -> None:
        self.connection = connection
        self.answered = False

    def write_headers(self, start_line: Any, headers: httputil.HTTPHeaders, chunk: bytes | None = None) -> Any:
        self.answered = True
        return self.connection.write_headers(start_line, headers, chunk)

    def write(self, chunk: bytes) -> Any:
        return self.connection.write(chunk)

    def finish(self) -> None:
        self.answered = True
        self.connection.finish()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)


def expects_body(headers: httputil.HTTPHeaders) -> bool:
    chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
    return chunked or headers.get("Content-Length", "0").strip() not in ("", "0")


class BodyRateGuard(httputil.HTTPMessageDelegate):
    """Passes a request through to the application while checking that its body keeps arriving fast enough.

    Every tick it notes how many bytes have arrived; once the oldest note in the window is a whole window
    old, the bytes since then must average at least the minimum rate. While the application is not reading
    (its ``headers_received`` or ``data_received`` has not finished) nothing is noted, and the window starts
    again when it reads again.
    """

    def __init__(
        self, delegate: httputil.HTTPMessageDelegate, connection: AnswerWatch, limits: ConnectionLimits, peer: str
    ) -> None:
        self.delegate = delegate
        self.connection = connection
        self.min_rate = limits.body_min_rate
        self.window = limits.body_rate_window
        self.tick_every = max(self.window / SAMPLES_PER_WINDOW, MIN_TICK)
        self.peer = peer
        self.received = 0
        self.reading = False
        self.notes: deque[tuple[float, int]] = deque()
        self.timer: object | None = None
        self.cut = False
        self.told_of_close = False

    @property
    def loop(self) -> Any:
        return self.connection.stream.io_loop

    def headers_received(
        self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine, headers: httputil.HTTPHeaders
    ) -> Awaitable[None] | None:
        pending = self.delegate.headers_received(start_line, headers)
        if not expects_body(headers):
            return pending
        if pending is None:
            self.start_reading()
            return None
        return self.read_after(pending)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.cut:
            return None
        self.received += len(chunk)
        pending = self.delegate.data_received(chunk)
        if pending is None:
            return None
        self.reading = False
        return self.read_after(pending)

    async def read_after(self, pending: Awaitable[None]) -> None:
        """Let the application finish what it is doing before the client's clock runs again."""
        await pending
        self.start_reading()

    def start_reading(self) -> None:
        self.reading = True
        self.notes.clear()
        self.notes.append((self.loop.time(), self.received))
        if self.timer is None and not self.cut:
            self.timer = self.loop.call_later(self.tick_every, self.tick)

    def tick(self) -> None:
        self.timer = None
        if self.cut:
            return
        if self.reading:
            now = self.loop.time()
            self.notes.append((now, self.received))
            while len(self.notes) > 1 and now - self.notes[1][0] >= self.window:
                self.notes.popleft()
            since, before = self.notes[0]
            if now - since >= self.window:
                rate = (self.received - before) / (now - since)
                if rate < self.min_rate:
                    self.give_up(rate)
                    return
        self.timer = self.loop.call_later(self.tick_every, self.tick)

    def give_up(self, rate: float) -> None:
        """End a request whose body is too slow: the application hears of a cut connection, the client of why."""
        self.cut = True
        message = (
            f"the request body arrived at {rate / 1024:.1f} KiB/s over the last {self.window:g} s; "
            f"this registry needs at least {self.min_rate / 1024:g} KiB/s (RegistryApp.body_min_rate)"
        )
        log.info("closing the connection from %s: %s", self.peer, message)
        self.tell_of_close()
        stream = self.connection.stream
        if self.connection.answered or stream.closed():
            stream.close()
            return
        close_after(stream, early_answer(408, "Request Timeout", RequestTimeout.code, message, {}))

    def stop(self) -> None:
        self.cut = True
        if self.timer is not None:
            self.loop.remove_timeout(self.timer)
            self.timer = None

    def tell_of_close(self) -> None:
        if not self.told_of_close:
            self.told_of_close = True
            self.delegate.on_connection_close()

    def finish(self) -> None:
        """The body is in; unless the request was given up, when the application has already been told the
        connection closed and must not now take a body it was never given."""
        self.stop()
        if not self.told_of_close:
            self.delegate.finish()

    def on_connection_close(self) -> None:
        self.stop()
        self.tell_of_close()


class GuardedHTTPServer(HTTPServer):
    """Tornado's HTTP server with the defences above (``limits``); everything else is Tornado's."""

    def initialize(self, *args: Any, limits: ConnectionLimits | None = None, **kwargs: Any) -> None:
        self.limits = limits or ConnectionLimits()
        kwargs["idle_connection_timeout"] = self.limits.header_timeout or None
        super().initialize(*args, **kwargs)
        self.open_by_address: Counter[str] = Counter()
        self.address_of: dict[iostream.IOStream, str] = {}

    def handle_stream(self, stream: iostream.IOStream, address: Any) -> None:
        peer = address[0] if isinstance(address, tuple) else ""
        cap = self.limits.max_connections_per_address
        if peer and cap > 0 and not self.limits.exempt(peer):
            key = address_key(peer)
            if self.open_by_address[key] >= cap:
                self.refuse(stream, peer, cap)
                return
            self.open_by_address[key] += 1
            self.address_of[stream] = key
        super().handle_stream(stream, address)

    def refuse(self, stream: iostream.IOStream, peer: str, cap: int) -> None:
        message = (
            f"the registry accepts at most {cap} connections at once from one address and {peer} has them all "
            "open; close some, or try again shortly (RegistryApp.max_connections_per_address)"
        )
        log.info("refusing a connection from %s: %d already open", peer, cap)
        headers = {"Retry-After": str(REFUSAL_RETRY_AFTER)}
        close_after(stream, early_answer(429, "Too Many Requests", TooManyRequests.code, message, headers))

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        if self.limits.body_min_rate <= 0 or not isinstance(request_conn, HTTP1Connection):
            return super().start_request(server_conn, request_conn)
        watched = AnswerWatch(request_conn)
        delegate = super().start_request(server_conn, watched)
        peer = str(getattr(request_conn.context, "remote_ip", ""))
        return BodyRateGuard(delegate, watched, self.limits, peer)

    def on_close(self, server_conn: object) -> None:
        assert isinstance(server_conn, HTTP1ServerConnection)
        key = self.address_of.pop(server_conn.stream, None)
        if key is not None:
            self.open_by_address[key] -= 1
            if self.open_by_address[key] <= 0:
                del self.open_by_address[key]
        super().on_close(server_conn)


def make_server(application: Application, registry: Registry, **options: Any) -> GuardedHTTPServer:
    """The HTTP server for ``application``, with the registry's connection limits and upload size (the same
    for ``serve`` and for the test harness)."""
    return GuardedHTTPServer(
        application,
        limits=registry.connection_limits,
        max_body_size=registry.max_upload_size,
        chunk_size=CHUNK_SIZE,
        **options,
    )
