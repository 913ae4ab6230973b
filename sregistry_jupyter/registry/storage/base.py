"""The BlobStore interface that every storage back end implements.

A back end is a small set of enforced abstract methods: a writer for a whole blob (``writer``, with
commit and cancel), writers at an offset for uploads that arrive in several requests (``start_assembly``,
``part_writer``, ``read_assembly``, ``_publish_assembly``, ``discard_upload``), a reader at an offset
(``read``), ``stat``, ``delete``, ``list_blobs`` and ``list_uploads`` for garbage collection, and
optionally a URL to redirect downloads to. Verifying digests is done here, once, for every back end:
a back end only moves bytes.
"""

from __future__ import annotations

import abc
import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from traitlets.config import LoggingConfigurable

from ..errors import DigestMismatch, SizeMismatch

VERIFY_CHUNK = 4 << 20


class StoreUnavailable(Exception):
    """The store cannot be used (a missing bucket, an unreachable endpoint); the message says so in one line."""


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int
    modified: dt.datetime


@dataclass(frozen=True)
class UploadInfo:
    """What an unfinished upload left in the store: its id (an assembly's, or a writer's) and its age."""

    upload_id: str
    size: int
    modified: dt.datetime


@dataclass
class PrefixHash:
    """The sha256 of an assembly's first ``position`` bytes, fed by part writers as the bytes arrive.

    Parts that arrive in order extend it while they stream, so committing the assembly reads back only
    what arrived out of order (nothing at all, usually). It lives in the memory of the process that
    received the parts; a commit elsewhere starts from an empty one and reads the whole assembly once.
    """

    hasher: Any = field(default_factory=hashlib.sha256)
    position: int = 0

    def update(self, data: bytes | memoryview) -> None:
        self.hasher.update(data)
        self.position += len(data)

    def hexdigest(self) -> str:
        """The digest of the bytes so far (the hash itself goes on)."""
        return self.hasher.copy().hexdigest()


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
        self._write(data)
        self._hasher.update(data)
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
    def _publish(self, digest: str) -> BlobInfo:
        """Make the verified bytes the blob ``digest``, as a new object no writer can reach."""

    @abc.abstractmethod
    def _discard(self) -> None: ...


class PartWriter(abc.ABC):
    """Writes the bytes ``[offset, offset + length)`` of an assembly; it does not hash unless given a
    ``PrefixHash`` that ends where this part starts (``hash_into``).

    ``finish`` checks that the whole part arrived; ``cancel`` stops early and keeps what was written
    (``size`` bytes), which a resumable upload goes on from and a retried part overwrites.
    """

    def __init__(self, offset: int, length: int) -> None:
        self.offset = offset
        self.length = length
        self.size = 0
        self.prefix: PrefixHash | None = None

    def hash_into(self, prefix: PrefixHash) -> None:
        if prefix.position != self.offset + self.size:
            raise ValueError("the running hash does not end where this part goes on")
        self.prefix = prefix

    def write(self, data: bytes | memoryview) -> None:
        if self.size + len(data) > self.length:
            raise SizeMismatch(f"the part is longer than its declared {self.length} bytes")
        self._write(data)
        self.size += len(data)
        if self.prefix is not None:
            self.prefix.update(data)

    def finish(self) -> None:
        if self.size != self.length:
            self.cancel()
            raise SizeMismatch(f"received {self.size} bytes of a {self.length}-byte part")
        self._finish()

    def cancel(self) -> None:
        """Stop writing this part; safe to call more than once."""
        self._finish()

    @abc.abstractmethod
    def _write(self, data: bytes | memoryview) -> None: ...

    @abc.abstractmethod
    def _finish(self) -> None:
        """Make what was written durable and release the part's resources; safe to call more than once."""


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

    def open_file(self, digest: str) -> int | None:
        """A read-only descriptor of the committed blob's local file, which the caller closes, so that it can be
        served with ``sendfile``; None from a store that keeps no local files (the caller then uses ``read``).
        FileNotFoundError if the blob is missing."""
        return None

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
    def list_uploads(self) -> Iterator[UploadInfo]:
        """Every unfinished upload's leftovers, assemblies and writers alike (for garbage collection)."""

    @abc.abstractmethod
    def discard_upload(self, upload_id: str) -> bool:
        """Remove what the unfinished upload ``upload_id`` left (an assembly and its parts, or a writer's
        bytes); True if there was anything. Safe to call more than once."""

    @abc.abstractmethod
    def start_assembly(self, upload_id: str, size: int, digest: str | None = None) -> None:
        """Prepare to receive a blob of ``size`` bytes in parts (``digest`` as for ``writer``)."""

    @abc.abstractmethod
    def part_writer(self, upload_id: str, offset: int, length: int) -> PartWriter:
        """A writer for the part ``[offset, offset + length)`` of an assembly."""

    @abc.abstractmethod
    def read_assembly(
        self, upload_id: str, offset: int, length: int, chunk_size: int = VERIFY_CHUNK
    ) -> Iterator[bytes]:
        """The bytes ``[offset, offset + length)`` an assembly holds so far."""

    @abc.abstractmethod
    def _publish_assembly(self, upload_id: str, digest: str, size: int) -> BlobInfo:
        """Make the verified assembly the blob ``digest``, refusing (``Conflict``) while a part writer of it
        is open; the back end checks the size."""

    def commit_assembly(
        self, upload_id: str, expected_digest: str, size: int, prefix: PrefixHash | None = None
    ) -> BlobInfo:
        """Verify the assembly against ``expected_digest`` and publish it; discard it on a mismatch.

        Only the bytes after ``prefix`` (all of them without one) are read back to finish the hash.
        """
        prefix = prefix or PrefixHash()
        if prefix.position > size:
            raise SizeMismatch(f"the upload holds more than {size} bytes")
        try:
            for chunk in self.read_assembly(upload_id, prefix.position, size - prefix.position):
                prefix.update(chunk)
            if prefix.position != size:
                raise SizeMismatch(f"the assembled upload is not {size} bytes")
            actual = "sha256." + prefix.hexdigest()
            if actual != expected_digest:
                raise DigestMismatch(f"the assembled upload's digest is {actual}, not {expected_digest}")
        except (DigestMismatch, SizeMismatch):
            self.discard_upload(upload_id)
            raise
        return self._publish_assembly(upload_id, expected_digest, size)

    def redirect_url(self, digest: str, expires_in: int, filename: str | None = None) -> str | None:
        """An absolute URL a client may fetch the blob from directly, or None if the registry serves it."""
        return None
