"""The default blob store: a folder of files named by their sha256.

Uploads are written to ``uploads/`` while hashing, fsynced, and renamed into ``blobs/sha256/xx/<hex>``
only once the digest matches, so a cut or failed upload never appears. Identical uploads land on the
same path, so an image pushed twice is stored once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

from traitlets import Unicode

from ..errors import DigestMismatch, InvalidInput, SizeMismatch
from ..names import digest_hex
from .base import BlobInfo, BlobStore, BlobWriter, PartWriter

UPLOAD_SUFFIX = ".upload"
WRITEBACK_WINDOW = 32 << 20
ASSEMBLY_SUFFIX = ".assembly"
UPLOAD_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish_file(source: Path, target: Path) -> None:
    """Move a verified upload to its content address, or drop it if those bytes are already stored.

    Touching an existing blob marks it as freshly referenced, so garbage collection's grace period
    protects it while the push that re-uses it is being recorded.
    """
    try:
        os.utime(target)
    except FileNotFoundError:
        os.replace(source, target)
        _fsync_dir(target.parent)
    else:
        source.unlink()


def _write_back_and_drop(fd: int) -> None:
    """Start writing a file's dirty pages to disk without waiting, and drop its pages already written.

    Linux's ``POSIX_FADV_DONTNEED`` does both. Called every ``WRITEBACK_WINDOW`` bytes of an upload, it lets
    the disk work while the rest arrives (the fsync at commit has only the tail left), keeps a multi-GB
    upload from evicting the page cache that other requests use, and keeps it clear of dirty-page throttling.
    The call is advisory, so where it is missing or refused the upload simply goes on.
    """
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _mtime(st: os.stat_result) -> dt.datetime:
    return dt.datetime.fromtimestamp(st.st_mtime, dt.UTC).replace(tzinfo=None)


class FilesystemBlobWriter(BlobWriter):
    def __init__(self, store: FilesystemBlobStore) -> None:
        super().__init__()
        self._store = store
        self._tmp = store.uploads_dir / f"{uuid.uuid4().hex}{UPLOAD_SUFFIX}"
        self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._unflushed = 0

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._unflushed += len(data)
        if self._unflushed >= WRITEBACK_WINDOW:
            self._unflushed = 0
            _write_back_and_drop(self._fd)

    def _publish(self, digest: str) -> BlobInfo:
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        target = self._store.path_for(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        _publish_file(self._tmp, target)
        st = target.stat()
        return BlobInfo(digest, st.st_size, _mtime(st))

    def _discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._tmp.unlink(missing_ok=True)


class FilesystemPartWriter(PartWriter):
    """Writes one part at its offset in the assembly file (parts may come from several processes)."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        super().__init__(length)
        self._fd = os.open(path, os.O_WRONLY)
        self._position = offset

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, self._position)
            self._position += written
            view = view[written:]

    def _finish(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class FilesystemBlobStore(BlobStore):
    root = Unicode("", config=True, help="Folder for blobs and uploads in progress (default: <data dir>/storage).")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if not self.root:
            raise ValueError("FilesystemBlobStore needs a root folder")
        self.blobs_dir = Path(self.root) / "blobs" / "sha256"
        self.uploads_dir = Path(self.root) / "uploads"
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, digest: str) -> Path:
        hexdigest = digest_hex(digest)
        return self.blobs_dir / hexdigest[:2] / hexdigest

    def writer(self, digest: str | None = None) -> FilesystemBlobWriter:
        return FilesystemBlobWriter(self)

    def stat(self, digest: str) -> BlobInfo | None:
        try:
            st = self.path_for(digest).stat()
        except FileNotFoundError:
            return None
        return BlobInfo(digest, st.st_size, _mtime(st))

    def read(
        self, digest: str, offset: int = 0, length: int | None = None, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        fd = os.open(self.path_for(digest), os.O_RDONLY)
        try:
            end = os.fstat(fd).st_size if length is None else offset + length
            position = offset
            while position < end:
                chunk = os.pread(fd, min(chunk_size, end - position), position)
                if not chunk:
                    break
                position += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    def delete(self, digest: str) -> bool:
        try:
            self.path_for(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def list_blobs(self) -> Iterator[BlobInfo]:
        for shard in sorted(self.blobs_dir.iterdir()):
            for entry in sorted(shard.iterdir()):
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                yield BlobInfo(f"sha256.{entry.name}", st.st_size, _mtime(st))

    def reap_uploads(self, older_than: dt.timedelta) -> int:
        cutoff = dt.datetime.now(dt.UTC).replace(tzinfo=None) - older_than
        reaped = 0
        leftovers = [*self.uploads_dir.glob(f"*{UPLOAD_SUFFIX}"), *self.uploads_dir.glob(f"*{ASSEMBLY_SUFFIX}")]
        for entry in leftovers:
            try:
                if _mtime(entry.stat()) < cutoff:
                    entry.unlink()
                    reaped += 1
            except FileNotFoundError:
                continue
        return reaped

    def _assembly_path(self, upload_id: str) -> Path:
        if not UPLOAD_ID_RE.fullmatch(upload_id):
            raise InvalidInput(f"invalid upload id {upload_id!r}")
        return self.uploads_dir / f"{upload_id}{ASSEMBLY_SUFFIX}"

    def start_assembly(self, upload_id: str, size: int, digest: str | None = None) -> None:
        path = self._assembly_path(upload_id)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)

    def part_writer(self, upload_id: str, offset: int, length: int) -> FilesystemPartWriter:
        path = self._assembly_path(upload_id)
        if not path.exists():
            raise InvalidInput(f"no upload {upload_id!r} in progress")
        return FilesystemPartWriter(path, offset, length)

    def commit_assembly(self, upload_id: str, expected_digest: str, size: int) -> BlobInfo:
        path = self._assembly_path(upload_id)
        target = self.path_for(expected_digest)
        hasher = hashlib.sha256()
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise InvalidInput(f"no upload {upload_id!r} in progress") from None
        try:
            if os.fstat(fd).st_size != size:
                raise SizeMismatch(f"the assembled upload is not {size} bytes")
            for chunk in iter(lambda: os.read(fd, 4 << 20), b""):
                hasher.update(chunk)
            actual = "sha256." + hasher.hexdigest()
            if actual != expected_digest:
                raise DigestMismatch(f"the assembled upload's digest is {actual}, not {expected_digest}")
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        target.parent.mkdir(parents=True, exist_ok=True)
        _publish_file(path, target)
        st = target.stat()
        return BlobInfo(expected_digest, st.st_size, _mtime(st))

    def abort_assembly(self, upload_id: str) -> None:
        self._assembly_path(upload_id).unlink(missing_ok=True)
