"""The client's requests as data, so that one implementation of every operation serves both clients.

An operation is a generator (a *plan*) that yields steps and receives their outcomes: a ``Call``
answers with its ``httpx.Response``, a ``Send`` streams part of a file as a request body, a ``Fetch``
streams a response body into a sink, a ``Digest`` hashes a file, ``Durable`` fsyncs one, a ``Pause``
waits. ``RegistryClient`` performs the steps with ``httpx.Client``, ``AsyncRegistryClient`` with
``httpx.AsyncClient`` (file and hashing work off the event loop); neither knows what an operation
means. When a step fails, the failure (a ``RegistryError``) is thrown into the plan, which may resume
(after a cut connection, ``RegistryUnavailable``) or let it propagate.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import httpx

T = TypeVar("T")

CHUNK = 1 << 20


@dataclass
class Call:
    """One request with a small (JSON or empty) body; statuses in ``allow`` are answers, not errors."""

    method: str
    path: str
    params: dict[str, Any] | list[tuple[str, Any]] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    allow: frozenset[int] = frozenset()


@dataclass
class Send:
    """A request whose body is ``length`` bytes of ``file`` from ``offset``, read in chunks as it is sent.

    ``sent(n)`` is told of every chunk handed to the connection, for progress.
    """

    method: str
    path: str
    file: Path
    offset: int
    length: int
    sent: Callable[[int], None]
    params: dict[str, Any] | list[tuple[str, Any]] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fetch:
    """A download: ``opened`` sees the response's status and headers first, then ``sink`` every chunk."""

    path: str
    headers: dict[str, str]
    opened: Callable[[httpx.Response], None]
    sink: Callable[[bytes], None]


@dataclass
class Digest:
    """The sha256 of a file's first ``length`` bytes (all of it if None), as a ``hashlib`` object."""

    file: Path
    length: int | None = None


@dataclass
class Durable:
    """Flush and fsync an open file, so that a renamed download survives a crash."""

    handle: BinaryIO


@dataclass
class Pause:
    seconds: float


Step = Call | Send | Fetch | Digest | Durable | Pause
Plan = Generator[Step, Any, T]


def file_chunks(file: Path, offset: int, length: int) -> Generator[bytes, None, None]:
    """The bytes to send, read lazily so that memory stays at one chunk whatever the file's size."""
    with file.open("rb") as handle:
        handle.seek(offset)
        left = length
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                raise OSError(f"{file} became shorter while it was being sent")
            left -= len(chunk)
            yield chunk


def sha256_of(file: Path, length: int | None = None) -> Any:
    """A ``hashlib`` sha256 object fed with the file's first ``length`` bytes (all of them if None)."""
    hasher = hashlib.sha256()
    left = length
    with file.open("rb") as handle:
        while left is None or left > 0:
            chunk = handle.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                break
            hasher.update(chunk)
            if left is not None:
                left -= len(chunk)
    return hasher


def make_durable(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
