"""Fixtures and helpers shared by the tests of the client, the extension, the widgets and the notebooks.

Each of those test folders imports the fixtures it uses from here in its ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.gotools import build_go_program, make_sif

DEFFILE = "Bootstrap: docker\nFrom: alpine:3.20\n\n%post\n    apk add --no-cache python3\n"
LABELS = {"org.label-schema.name": "tools", "maintainer": "alice@example.org"}


@pytest.fixture(scope="session")
def mksif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The program that writes real SIF files with the sylabs sif package."""
    return build_go_program("mksif", tmp_path_factory.mktemp("gobin"))


@pytest.fixture
def sif(mksif: Path, tmp_path: Path) -> Callable[..., Path]:
    """Make a real SIF file: ``sif("name", size=..., seed=...)``, with a definition file and labels."""

    def make(name: str = "image", *, size: int = 64 << 10, seed: int = 1, folder: Path | None = None) -> Path:
        target = (folder or tmp_path) / f"{name}.sif"
        target.parent.mkdir(parents=True, exist_ok=True)
        return make_sif(mksif, target, size=size, seed=seed, deffile=DEFFILE, labels=LABELS)

    return make


class Blocking:
    """An ``AsyncRegistryClient`` whose coroutine methods are run to completion on a private loop, so that
    one test body exercises the sync and the async client alike."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name == "iter_collections":
            return lambda *a, **k: self._loop.run_until_complete(self._collect(attribute(*a, **k)))
        if not callable(attribute):
            return attribute
        return lambda *a, **k: self._loop.run_until_complete(attribute(*a, **k))

    @staticmethod
    async def _collect(iterator: Any) -> list[Any]:
        return [item async for item in iterator]

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


@pytest.fixture(params=["sync", "async"])
def connect(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``connect(url, token)``: a ``RegistryClient``, or an ``AsyncRegistryClient`` driven through ``Blocking``."""
    from sregistry_jupyter.client import AsyncRegistryClient, RegistryClient

    made: list[Any] = []

    def make(url: str, token: str | None = None, **kwargs: Any) -> Any:
        if request.param == "sync":
            client: Any = RegistryClient(url, token or "", **kwargs)
        else:
            client = Blocking(AsyncRegistryClient(url, token or "", **kwargs))
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@dataclass
class CuttingProxy:
    """A TCP proxy on loopback that drops connections after a number of bytes in one direction.

    ``cut_after(n, "up")`` cuts the first connection to carry ``n`` bytes from client to server
    (``"down"``: server to client), once per call; ``made`` counts the cuts done, ``carried`` the bytes
    forwarded each way. This is a real cut:
    both sockets are shut down mid-stream, as when a network link fails. ``pace`` (seconds per 64 KiB
    forwarded) slows every connection down, so that a transfer is still running when a test acts on it.
    """

    target: tuple[str, int]
    pace: float = 0.0
    url: str = ""
    cuts: list[tuple[int, str]] = field(default_factory=list)
    made: int = 0
    carried: dict[str, int] = field(default_factory=lambda: {"up": 0, "down": 0})
    _server: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> CuttingProxy:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def cut_after(self, count: int, direction: str) -> None:
        with self._lock:
            self.cuts.append((count, direction))

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._serve, args=(client, upstream), daemon=True).start()

    def _take_cut(self, direction: str, carried: int) -> int | None:
        """The byte count to cut at, if a pending cut in ``direction`` is reached by ``carried`` bytes."""
        with self._lock:
            for index, (count, wanted) in enumerate(self.cuts):
                if wanted == direction and carried >= count:
                    del self.cuts[index]
                    self.made += 1
                    return count
        return None

    def _serve(self, client: socket.socket, upstream: socket.socket) -> None:
        def pump(source: socket.socket, sink: socket.socket, direction: str) -> None:
            carried = 0
            try:
                while True:
                    data = source.recv(1 << 16)
                    if not data:
                        sink.shutdown(socket.SHUT_WR)
                        return
                    cut = self._take_cut(direction, carried + len(data))
                    if cut is not None:
                        sink.sendall(data[: max(0, cut - carried)])
                        break
                    carried += len(data)
                    sink.sendall(data)
                    with self._lock:
                        self.carried[direction] += len(data)
                    if self.pace:
                        time.sleep(self.pace)
            except OSError:
                pass
            for sock in (client, upstream):
                # shutdown, not only close: it wakes the other pump's recv and sends the FIN at once
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

        threading.Thread(target=pump, args=(upstream, client, "down"), daemon=True).start()
        pump(client, upstream, "up")


@pytest.fixture
def cutting_proxy(registry: Any) -> Iterator[CuttingProxy]:
    host, port = registry.url.removeprefix("http://").split(":")
    proxy = CuttingProxy((host, int(port))).start()
    yield proxy
    proxy.stop()
