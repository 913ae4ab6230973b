"""The BlobStore interface that every storage back end implements."""

from __future__ import annotations

import abc
import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from traitlets.config import LoggingConfigurable

from ..errors import DigestMismatch, SizeMismatch


class StoreUnavailable(Exception):
    """The store cannot be used (a missing bucket, an unreachable endpoint); the message says so in one line."""


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int
    modified: dt.datetime


class BlobWriter(abc.ABC):
    """Receives the bytes of one upload, hashing them as they arrive.

    Nothing written becomes visible until ``commit`` has checked the digest (and size); ``cancel`` (or a
    failed commit) removes every trace of the upload.
    """

    def __init__(self) -> None:
        self._hasher = hashlib.sha256()
        self.size = 0
        self.closed = False

    @property
    def digest(self) -> str:
        return "sha256." + self._hasher.hexdigest()

    def write(self, data: bytes | memoryview) -> None:
        if self.closed:
            raise ValueError("write to a closed blob writer")
        self._hasher.update(data)
        self._write(data)
        self.size += len(data)

    def commit(self, expected_digest: str, expected_size: int | None = None) -> BlobInfo:
        """Verify and publish the blob; on any mismatch the upload is discarded and an error raised."""
        if self.closed:
            raise ValueError("commit of a closed blob writer")
        if expected_size is not None and self.size != expected_size:
            self.cancel()
            raise SizeMismatch(f"received {self.size} bytes, expected {expected_size}")
        actual = self.digest
        if actual != expected_digest:
            self.cancel()
            raise DigestMismatch(f"the body's digest is {actual}, not the declared {expected_digest}")
        try:
            info = self._publish(actual)
        except BaseException:
            self.cancel()
            raise
        self.closed = True
        return info

    def cancel(self) -> None:
        """Discard the upload; safe to call more than once."""
        if not self.closed:
            self.closed = True
            self._discard()

    @abc.abstractmethod
    def _write(self, data: bytes | memoryview) -> None: ...

    @abc.abstractmethod
    def _publish(self, digest: str) -> BlobInfo: ...

    @abc.abstractmethod
    def _discard(self) -> None: ...


class PartWriter(abc.ABC):
    """Receives one part of a multipart upload; ``finish`` checks its length and returns its sha256 hex."""

    def __init__(self, length: int) -> None:
        self._hasher = hashlib.sha256()
        self.length = length
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        if self.size + len(data) > self.length:
            raise SizeMismatch(f"the part is longer than its declared {self.length} bytes")
        self._hasher.update(data)
        self._write(data)
        self.size += len(data)

    def finish(self) -> str:
        if self.size != self.length:
            raise SizeMismatch(f"received {self.size} bytes of a {self.length}-byte part")
        self._finish()
        return self._hasher.hexdigest()

    def cancel(self) -> None:
        """Stop writing this part; what was written is overwritten by a retry or caught by the digest check."""
        self._finish()

    @abc.abstractmethod
    def _write(self, data: bytes | memoryview) -> None: ...

    @abc.abstractmethod
    def _finish(self) -> None:
        """Release the part's resources; safe to call more than once."""


class BlobStore(LoggingConfigurable):
    """Abstract blob storage; configured as ``RegistryApp.blob_store_class``."""

    #: The smallest part (but the last) that ``part_writer`` accepts in an assembly.
    min_part_size = 1

    @abc.abstractmethod
    def writer(self, digest: str | None = None) -> BlobWriter:
        """A new writer for one upload; ``digest``, when the upload declares it up front, lets a store
        place the bytes at their final address as they arrive (they still become visible only at commit)."""

    @abc.abstractmethod
    def stat(self, digest: str) -> BlobInfo | None:
        """Size and modification time of a committed blob, or None."""

    @abc.abstractmethod
    def read(
        self, digest: str, offset: int = 0, length: int | None = None, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        """The bytes ``[offset, offset + length)`` of a blob, in chunks of at most ``chunk_size``."""

    def read_at(self, digest: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` in one piece (for header parsing)."""
        return b"".join(self.read(digest, offset, length))

    @abc.abstractmethod
    def delete(self, digest: str) -> bool:
        """Remove a blob; True if it existed."""

    @abc.abstractmethod
    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every committed blob (for garbage collection)."""

    @abc.abstractmethod
    def reap_uploads(self, older_than: dt.timedelta) -> int:
        """Remove leftovers of uploads that never finished (crashed processes); returns how many."""

    @abc.abstractmethod
    def start_assembly(self, upload_id: str, size: int, digest: str | None = None) -> None:
        """Prepare to receive a blob of ``size`` bytes in parts (``digest`` as for ``writer``)."""

    @abc.abstractmethod
    def part_writer(self, upload_id: str, offset: int, length: int) -> PartWriter:
        """A writer for the part ``[offset, offset + length)`` of an assembly."""

    @abc.abstractmethod
    def commit_assembly(self, upload_id: str, expected_digest: str, size: int) -> BlobInfo:
        """Verify the whole assembled blob against ``expected_digest`` and publish it; discard it on mismatch."""

    @abc.abstractmethod
    def abort_assembly(self, upload_id: str) -> None:
        """Discard an assembly and every part received; safe to call more than once."""

    def redirect_url(self, digest: str, expires_in: int, filename: str | None = None) -> str | None:
        """An absolute URL a client may fetch the blob from directly, or None if the registry serves it."""
        return None
