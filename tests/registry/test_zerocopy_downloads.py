"""Downloads of blobs kept as local files go by ``sendfile`` from worker threads (``handlers/zerocopy.py``):
the bytes and the framing are exact for whole files and ranges on one kept-alive connection, clients that stop
reading hold no thread, clients that hang up leave no descriptor open, a file shorter than its record ends the
download instead of hanging it, and a store without local files still streams through Tornado."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from sregistry_jupyter.registry.handlers import zerocopy
from sregistry_jupyter.registry.storage import FilesystemBlobStore

IMAGES = "/api/v1/collections/lab/containers/tool/images"
FILE = IMAGES + "/{tag}/file"


def push(alice: httpx.Client, data: bytes, tag: str) -> str:
    digest = "sha256." + hashlib.sha256(data).hexdigest()
    response = alice.post(IMAGES, params={"digest": digest, "tag": tag}, content=data)
    assert response.status_code == 201, response.text
    return digest


@pytest.fixture
def alice(registry) -> httpx.Client:
    return registry.client(registry.add_user("alice", scope="admin"))


def open_socket(registry) -> socket.socket:
    host, port = registry.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def request(sock: socket.socket, token: str, path: str, *extra: str) -> None:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}", *extra]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response read off ``sock`` by its ``Content-Length``, leaving the connection for the next one."""
    head = b""
    while b"\r\n\r\n" not in head:
        received = sock.recv(1)
        assert received, f"the connection closed after {head!r}"
        head += received
    status_line, *header_lines = head.decode("latin1").strip().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    length = int(headers["content-length"])
    body = bytearray()
    while len(body) < length:
        received = sock.recv(min(1 << 20, length - len(body)))
        assert received, f"the connection closed after {len(body)} of {length} bytes"
        body += received
    return int(status_line.split()[1]), headers, bytes(body)


def token_of(client: httpx.Client) -> str:
    return client.headers["Authorization"].removeprefix("Bearer ")


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_whole_files_and_ranges_go_by_sendfile_on_one_kept_alive_connection(registry, alice, monkeypatch):
    data = os.urandom(3 << 20) + b"tail"
    push(alice, data, "latest")
    store = registry.context.store

    def no_chunks(*_args, **_kwargs):
        raise AssertionError("a local blob was read into memory")

    monkeypatch.setattr(store, "read", no_chunks)
    sock = open_socket(registry)
    token = token_of(alice)
    try:
        request(sock, token, FILE.format(tag="latest"))
        assert read_response(sock)[::2] == (200, data)
        request(sock, token, FILE.format(tag="latest"), "Range: bytes=1000-2000999")
        status, headers, body = read_response(sock)
        assert (status, headers["content-range"], body) == (206, f"bytes 1000-2000999/{len(data)}", data[1000:2001000])
        request(sock, token, FILE.format(tag="latest"), "Range: bytes=-4")
        assert read_response(sock)[::2] == (206, b"tail")
    finally:
        sock.close()


def test_clients_that_stop_reading_hold_no_thread(registry, alice):
    data = os.urandom(64 << 20)
    push(alice, data, "big")
    small = os.urandom(1 << 20)
    push(alice, small, "small")
    token = token_of(alice)
    stalled = [open_socket(registry) for _ in range(12)]  # twice the default executor's threads on 2 cores
    try:
        for sock in stalled:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            request(sock, token, FILE.format(tag="big"))
        time.sleep(1.0)
        began = time.monotonic()
        response = alice.get(FILE.format(tag="small"))
        took = time.monotonic() - began
        assert response.status_code == 200 and response.content == small
        assert took < 5.0, f"a 1 MiB pull took {took:.1f} s beside clients that read nothing"
    finally:
        for sock in stalled:
            sock.close()


def test_a_client_that_hangs_up_mid_download_leaves_no_descriptor_open(registry, alice):
    data = os.urandom(32 << 20)
    push(alice, data, "big")
    assert alice.get(FILE.format(tag="big")).content == data  # pools and caches are warm: counts are comparable
    before = open_descriptors()
    token = token_of(alice)
    for _ in range(4):
        sock = open_socket(registry)
        request(sock, token, FILE.format(tag="big"))
        assert sock.recv(65536)
        sock.close()
    deadline = time.monotonic() + 20
    while open_descriptors() > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_descriptors() <= before
    assert alice.get(FILE.format(tag="big")).content == data


def test_a_file_shorter_than_its_record_ends_the_download(registry, alice, caplog):
    data = os.urandom(2 << 20)
    digest = push(alice, data, "latest")
    path = Path(registry.context.store.path_for(digest))
    path.chmod(0o644)
    os.truncate(path, 1 << 20)

    with pytest.raises(httpx.RemoteProtocolError):
        alice.get(FILE.format(tag="latest"))

    assert any("ended" in record.getMessage() and "early" in record.getMessage() for record in caplog.records)
    assert alice.get("/version").status_code == 200


class NoLocalFiles(FilesystemBlobStore):
    """A store that, like S3, has no local file to offer: downloads stream through Tornado in chunks."""

    def open_file(self, digest: str) -> None:
        return None


def test_a_store_without_local_files_streams_its_blobs_in_chunks(registry, alice):
    data = os.urandom((2 << 20) + 12345)
    push(alice, data, "latest")
    registry.context.store = NoLocalFiles(root=str(registry.data_dir / "storage"))

    whole = alice.get(FILE.format(tag="latest"))
    ranged = alice.get(FILE.format(tag="latest"), headers={"Range": "bytes=1048000-"})

    assert whole.status_code == 200 and whole.content == data
    assert ranged.status_code == 206 and ranged.content == data[1048000:]


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_descriptors_given_up_mid_step_are_closed_by_the_step_and_never_before(tmp_path, monkeypatch):
    release = threading.Event()
    started = threading.Event()

    def slow_range(*_args):
        started.set()
        release.wait(10)
        return 10, False

    monkeypatch.setattr(zerocopy, "send_range", slow_range)
    left, right = socket.socketpair()
    (tmp_path / "blob").write_bytes(b"0123456789")
    held = zerocopy.Descriptors(os.dup(left.fileno()), os.open(tmp_path / "blob", os.O_RDONLY))
    worker = threading.Thread(target=held.step, args=(0, 10))
    worker.start()
    assert started.wait(10)

    held.close()
    still_open = is_open(held.sock_fd) and is_open(held.file_fd)
    release.set()
    worker.join(10)

    assert still_open
    assert not is_open(held.sock_fd) and not is_open(held.file_fd)
    assert held.step(0, 10) == (0, False)  # a step queued behind the close does nothing
    left.close()
    right.close()
