"""Slow and greedy clients, over real sockets: half-sent headers, trickling bodies, steady slow bodies, and
more connections from one address than the registry allows. The registry runs with short windows here so
that each case takes a few seconds; the defaults are the same code with longer numbers.
"""

from __future__ import annotations

import json
import os
import select
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from traitlets import TraitError

from sregistry_jupyter.registry.app import RegistryApp
from sregistry_jupyter.registry.connections import ConnectionLimits
from sregistry_jupyter.registry.services.limits import parse_networks
from tests.conftest import blobs_on_disk, uploads_on_disk, wait_for
from tests.registry.test_request_core import SlowHub, hub_registry
from tests.registry.test_transfer import IMAGES, digest_of, push

HEADER_TIMEOUT = 1.0
WINDOW = 1.0
MIN_RATE = 64 << 10
CAP = 4
QUICK = {
    "connection_limits": ConnectionLimits(
        header_timeout=HEADER_TIMEOUT, body_min_rate=MIN_RATE, body_rate_window=WINDOW, max_connections_per_address=CAP
    )
}
SECOND_ADDRESS = "127.0.0.2"


def connect(url: str, source: str = "127.0.0.1") -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10, source_address=(source, 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, seconds: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    received = b""
    sock.settimeout(seconds)
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        received += data
    return received, time.monotonic() - started


def parse_answer(raw: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, json.loads(body) if body else {}


def get_version(sock: socket.socket) -> int:
    """One keep-alive ``GET /version`` on an open connection; its status."""
    sock.sendall(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    sock.settimeout(10)
    raw = b""
    while b"\r\n\r\n" not in raw:
        raw += sock.recv(65536)
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1])


def upload_head(token: str, data: bytes, collection: str = "lab", container: str = "tool") -> bytes:
    path = IMAGES.format(c=collection, n=container) + f"?digest={digest_of(data)}&tag=latest"
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()


def send_paced(sock: socket.socket, data: bytes, piece: int, every: float) -> bytes:
    """Send ``data`` ``piece`` bytes at a time, one piece each ``every`` seconds, stopping early if the server
    answers; returns what it answered (empty if it has not yet)."""
    sent = 0
    while sent < len(data):
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            return read_until_closed(sock, 10)[0]
        try:
            sock.sendall(data[sent : sent + piece])
        except (BrokenPipeError, ConnectionResetError):
            return read_until_closed(sock, 10)[0]
        sent += piece
        time.sleep(every)
    return b""


@pytest.mark.parametrize("registry_settings", [QUICK])
def test_half_sent_headers_are_closed_after_the_header_timeout(registry):
    sockets = [connect(registry.url) for _ in range(CAP - 1)]
    started = time.monotonic()
    for sock in sockets:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    for sock in sockets:
        assert read_until_closed(sock, HEADER_TIMEOUT + 5)[0] == b""
        assert HEADER_TIMEOUT * 0.8 <= time.monotonic() - started < HEADER_TIMEOUT + 3
        sock.close()


CROWD = {
    "connection_limits": ConnectionLimits(
        header_timeout=HEADER_TIMEOUT, body_min_rate=MIN_RATE, body_rate_window=WINDOW, max_connections_per_address=80
    )
}


@pytest.mark.parametrize("registry_settings", [CROWD])
def test_twenty_half_sent_header_blocks_and_fifty_half_sent_bodies_are_all_closed(registry):
    token = registry.add_user("alice")
    heads = [connect(registry.url) for _ in range(20)]
    bodies = [connect(registry.url) for _ in range(50)]
    started = time.monotonic()
    for sock in heads:
        sock.sendall(b"POST /api/v1/collections HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
    for index, sock in enumerate(bodies):
        data = os.urandom(1 << 20)
        sock.sendall(upload_head(token, data, container=f"tool{index}") + data[:1000])
    for sock in heads + bodies:
        read_until_closed(sock, HEADER_TIMEOUT + WINDOW + 10)
        sock.close()
    assert time.monotonic() - started < HEADER_TIMEOUT + WINDOW + 5
    assert wait_for(lambda: uploads_on_disk(registry) == [])
    assert blobs_on_disk(registry) == []
    assert answers_version(registry.url)


@pytest.mark.parametrize("registry_settings", [QUICK])
def test_an_idle_keep_alive_connection_is_closed_after_the_header_timeout(registry):
    sock = connect(registry.url)
    assert get_version(sock) == 200
    received, seconds = read_until_closed(sock, HEADER_TIMEOUT + 5)
    assert received == b"" and seconds < HEADER_TIMEOUT + 3
    sock.close()


@pytest.mark.parametrize("registry_settings", [QUICK])
def test_a_body_trickling_below_the_minimum_rate_is_answered_408_and_leaves_nothing(registry):
    token = registry.add_user("alice")
    old = os.urandom(1000)
    assert push(registry.client(token), old).status_code == 201
    data = os.urandom(1 << 20)
    sock = connect(registry.url)
    sock.sendall(upload_head(token, data))
    started = time.monotonic()
    answer = send_paced(sock, data, 1024, 0.1)  # 10 KiB/s
    waited = time.monotonic() - started
    sock.close()

    status, headers, body = parse_answer(answer)
    assert status == 408 and headers["connection"] == "close"
    assert body["code"] == "REQUEST_TIMEOUT"
    assert "KiB/s" in body["message"] and "body_min_rate" in body["message"]
    assert body["detail"] == body["error"]["message"] == body["message"]
    assert WINDOW <= waited < WINDOW + 3
    assert wait_for(lambda: uploads_on_disk(registry) == [])
    assert blobs_on_disk(registry) == [digest_of(old)[7:]]
    latest = registry.client().get(IMAGES.format(c="lab", n="tool") + "/latest")
    assert latest.json()["digest"] == digest_of(old)


@pytest.mark.parametrize("registry_settings", [QUICK])
def test_a_slow_but_steady_body_above_the_minimum_rate_is_stored(registry):
    token = registry.add_user("alice")
    data = os.urandom(640 << 10)
    sock = connect(registry.url)
    sock.sendall(upload_head(token, data))
    started = time.monotonic()
    assert send_paced(sock, data, 16 << 10, 0.1) == b""  # 160 KiB/s for four seconds
    assert time.monotonic() - started > 3 * WINDOW
    received = b""
    sock.settimeout(10)
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    sock.close()
    assert received.startswith(b"HTTP/1.1 201 "), received[:200]
    pulled = registry.client().get(IMAGES.format(c="lab", n="tool") + "/latest/file")
    assert pulled.content == data


@pytest.mark.parametrize("registry_settings", [QUICK])
def test_headers_then_silence_are_closed_once_the_window_has_passed(registry):
    token = registry.add_user("alice")
    sock = connect(registry.url)
    sock.sendall(upload_head(token, os.urandom(256 << 10)))
    answer, seconds = read_until_closed(sock, WINDOW + 5)
    sock.close()
    assert parse_answer(answer)[0] == 408 and WINDOW <= seconds < WINDOW + 3
    assert wait_for(lambda: uploads_on_disk(registry) == [])


@pytest.fixture
def slower_hub() -> Iterator[SlowHub]:
    hub = SlowHub(WINDOW * 2.5, ["access:services!service=sregistry"])
    hub.start()
    yield hub
    hub.stop()


def test_the_time_the_registry_takes_to_let_a_push_in_is_not_counted_against_its_body(db_url, tmp_path, slower_hub):
    """The body is all sent at once, but the registry reads it only after asking a hub about the caller,
    which takes longer than the window: the rate is measured from then on, and the push succeeds."""
    registry, stop = hub_registry(db_url, tmp_path, slower_hub, **QUICK)
    try:
        data = os.urandom(256 << 10)
        sock = connect(registry.url)
        path = IMAGES.format(c="carols", n="tool") + f"?digest={digest_of(data)}&tag=latest"
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token hub-token-carol\r\n"
        sock.sendall(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
        answer, seconds = read_until_closed(sock, 15)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
        assert seconds >= WINDOW * 2.5
    finally:
        stop()


def answers_version(url: str) -> bool:
    """Whether a new connection from 127.0.0.1 is served (rather than refused)."""
    sock = connect(url)
    try:
        return get_version(sock) == 200
    except (ValueError, StopIteration, OSError):
        return False
    finally:
        sock.close()


@pytest.mark.parametrize("registry_settings", [QUICK])
def test_the_connection_over_the_cap_is_answered_429_while_other_addresses_connect(registry):
    held = [connect(registry.url) for _ in range(CAP)]
    for sock in held:
        assert get_version(sock) == 200

    over = connect(registry.url)
    answer, seconds = read_until_closed(over, 5)
    over.close()
    status, headers, body = parse_answer(answer)
    assert status == 429 and headers["retry-after"] == "5" and seconds < 3
    assert body["code"] == "TOO_MANY_REQUESTS" and f"at most {CAP} connections" in body["message"]
    assert body["error"] == {"code": 429, "message": body["message"]} and body["detail"] == body["message"]

    with httpx.Client(base_url=registry.url, timeout=10) as client:
        refused = client.get("/api/v1/collections")
    assert refused.status_code == 429 and refused.json()["code"] == "TOO_MANY_REQUESTS"

    elsewhere = connect(registry.url, SECOND_ADDRESS)
    assert get_version(elsewhere) == 200
    elsewhere.close()

    held.pop().close()
    assert wait_for(lambda: answers_version(registry.url), 5)
    for sock in held:
        assert get_version(sock) == 200
        sock.close()


@pytest.mark.parametrize(
    "registry_settings",
    [
        {
            "connection_limits": ConnectionLimits(
                max_connections_per_address=1, exempt_networks=parse_networks(["127.0.0.0/8"])
            )
        }
    ],
)
def test_exempt_networks_are_not_capped(registry):
    held = [connect(registry.url) for _ in range(3)]
    for sock in held:
        assert get_version(sock) == 200
        sock.close()


@pytest.mark.slow
def test_serve_applies_the_configured_limits(server_process, tmp_path):
    server = server_process(
        "--data-dir",
        str(tmp_path / "data"),
        "--RegistryApp.header_timeout=1",
        "--RegistryApp.max_connections_per_address=2",
        "--RegistryApp.body_min_rate=65536",
        "--RegistryApp.body_rate_window=1",
    )
    half = connect(server.url)
    half.sendall(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    keep = connect(server.url)
    assert get_version(keep) == 200
    over = connect(server.url)
    assert parse_answer(read_until_closed(over, 5)[0])[0] == 429
    received, seconds = read_until_closed(half, 6)
    assert received == b"" and seconds < 4
    trickle = connect(server.url)
    trickle.sendall(b"PATCH /api/v1/collections/lab HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n")
    assert parse_answer(send_paced(trickle, b"x" * 100_000, 100, 0.1))[0] == 408
    for sock in (half, keep, over, trickle):
        sock.close()


def test_the_limits_are_configured_on_the_app_and_refused_when_meaningless():
    app = RegistryApp(
        header_timeout=2.5,
        body_min_rate=1 << 20,
        body_rate_window=12,
        max_connections_per_address=8,
        limit_exempt_networks=["10.0.0.0/8"],
        trusted_proxies=["192.0.2.7"],
    )
    limits = app.make_connection_limits()
    assert (limits.header_timeout, limits.body_min_rate, limits.body_rate_window) == (2.5, 1 << 20, 12)
    assert limits.max_connections_per_address == 8
    assert limits.exempt("10.1.2.3") and limits.exempt("::ffff:10.1.2.3") and limits.exempt("192.0.2.7")
    assert not limits.exempt("192.0.2.8") and not limits.exempt("2001:db8::1")
    for trait, value in (("body_rate_window", 0), ("max_connections_per_address", -1), ("header_timeout", -1)):
        with pytest.raises(TraitError, match=trait):
            setattr(app, trait, value)
