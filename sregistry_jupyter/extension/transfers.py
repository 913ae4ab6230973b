"""Pushes and pulls that run in the Jupyter server process, not in the browser tab that asked for them.

Each transfer is an asyncio task using the extension's ``AsyncRegistryClient``; closing the tab does
not stop it, ``cancel`` does (the client then terminates the upload or removes the partial file).
Watchers (the server-sent events handler) wait for ``changed``; progress wakes them at most
``PROGRESS_INTERVAL`` apart, a change of state at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..client.errors import NotFound, RegistryError

PROGRESS_INTERVAL = 0.25
KEEP_FINISHED = 200
FINAL = ("done", "failed", "cancelled")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class Transfer:
    """One transfer's state, as the REST API shows it (``as_json``)."""

    direction: str
    ref: str
    path: str
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    state: str = "queued"
    bytes_done: int = 0
    bytes_total: int = 0
    rate: float = 0.0
    eta: float | None = None
    error: str | None = None
    result: Any = None
    started_at: str | None = None
    finished_at: str | None = None
    created: float = field(default_factory=time.monotonic)
    version: int = 0
    task: asyncio.Task | None = None
    _started: float = 0.0
    _first_byte: int | None = None
    _last_notice: float = 0.0
    _waiters: list[asyncio.Future] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "direction": self.direction,
            "ref": self.ref,
            "path": self.path,
            "state": self.state,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "rate": round(self.rate, 1),
            "eta": None if self.eta is None else round(self.eta, 1),
            "error": self.error,
            "result": self.result,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }

    def progress(self, done: int, total: int) -> None:
        """The client's progress callback; it may be called from a worker thread (downloads write there)."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._record(done, total)
        else:
            loop.call_soon_threadsafe(self._record, done, total)

    def _record(self, done: int, total: int) -> None:
        clock = time.monotonic()
        if self._first_byte is None or done < self._first_byte:
            self._first_byte, self._started = done, clock
        self.bytes_done, self.bytes_total = done, total
        elapsed = clock - self._started
        self.rate = (done - self._first_byte) / elapsed if elapsed > 0 else 0.0
        self.eta = (total - done) / self.rate if self.rate > 0 else None
        if done >= total or clock - self._last_notice >= PROGRESS_INTERVAL:
            self._last_notice = clock
            self.notify()

    def set_state(self, state: str, **changes: Any) -> None:
        self.state = state
        for name, value in changes.items():
            setattr(self, name, value)
        if state in FINAL:
            self.finished_at = now_iso()
            self.eta = None if state != "done" else 0.0
        self.notify()

    def notify(self) -> None:
        self.version += 1
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def changed(self, since: int, timeout: float) -> bool:
        """Wait until the version passes ``since`` (True) or ``timeout`` seconds pass (False)."""
        if self.version > since:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return False
        return True


Work = Callable[[Transfer], Awaitable[Any]]


class TransferManager:
    """This server's transfers, newest first; finished ones beyond ``KEEP_FINISHED`` are forgotten."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.transfers: dict[str, Transfer] = {}

    def start(self, transfer: Transfer, work: Work) -> Transfer:
        transfer._loop = asyncio.get_running_loop()
        self.transfers[transfer.id] = transfer
        transfer.task = asyncio.create_task(self._run(transfer, work), name=f"sregistry-transfer-{transfer.id}")
        self._forget_old()
        return transfer

    async def _run(self, transfer: Transfer, work: Work) -> None:
        transfer.set_state("running", started_at=now_iso())
        try:
            result = await work(transfer)
        except asyncio.CancelledError:
            transfer.set_state("cancelled", error="cancelled")
            return
        except RegistryError as error:
            transfer.set_state("failed", error=error.message)
            return
        except Exception as error:  # reported in the transfer, not lost in a task nobody awaits
            self.log.exception("sregistry transfer %s failed", transfer.id)
            transfer.set_state("failed", error=f"{type(error).__name__}: {error}")
            return
        transfer.set_state("done", result=result, bytes_done=transfer.bytes_total)

    def get(self, transfer_id: str) -> Transfer:
        found = self.transfers.get(transfer_id)
        if found is None:
            raise NotFound(f"no transfer {transfer_id!r}")
        return found

    def newest_first(self) -> list[Transfer]:
        return sorted(self.transfers.values(), key=lambda t: t.created, reverse=True)

    async def cancel(self, transfer_id: str) -> Transfer:
        transfer = self.get(transfer_id)
        if transfer.task is not None and not transfer.task.done():
            transfer.task.cancel()
            await asyncio.wait([transfer.task])
        return transfer

    async def stop(self) -> None:
        running = [t.task for t in self.transfers.values() if t.task is not None and not t.task.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)

    def _forget_old(self) -> None:
        finished = [t for t in self.newest_first() if t.final]
        for transfer in finished[KEEP_FINISHED:]:
            del self.transfers[transfer.id]
