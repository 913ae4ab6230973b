"""The default blob store: a folder of files named by their sha256.

Uploads are written to ``uploads/`` while hashing, fsynced, made read-only and renamed into
``blobs/sha256/xx/<hex>`` only once the digest matches, so a cut or failed upload never appears and a
published blob is always a file that no writer holds open. A verified upload replaces whatever file
was at its address (the bytes just checked win over bytes stored earlier), so identical uploads still
leave one file. An assembly (an upload in parts) is published only when none of its part writers is
open in this process and none can open again; the upload sessions in the database extend that to
every process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from traitlets import Unicode

from ..errors import Conflict, InvalidInput, SizeMismatch
from ..names import digest_hex
from .base import VERIFY_CHUNK, BlobInfo, BlobStore, BlobWriter, PartWriter, UploadInfo

UPLOAD_SUFFIX = ".upload"
WRITEBACK_WINDOW = 32 << 20
ASSEMBLY_SUFFIX = ".assembly"
UPLOAD_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
PUBLISHED_MODE = 0o444


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish_file(fd: int, source: Path, target: Path) -> BlobInfo:
    """Make the verified upload open as ``fd`` the blob at ``target``: durable, read-only, by rename.

    The caller guarantees that no other descriptor may write the file. Renaming replaces a file already
    at ``target``; that also marks those bytes as freshly referenced, so garbage collection's grace
    period protects them while the push is being recorded.
    """
    try:
        os.fsync(fd)
        os.fchmod(fd, PUBLISHED_MODE)
    finally:
        os.close(fd)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    _fsync_dir(target.parent)
    st = target.stat()
    return BlobInfo("sha256." + target.name, st.st_size, _mtime(st))


def _write_back_and_drop(fd: int, offset: int = 0, length: int = 0) -> None:
    """Start writing a file's dirty pages to disk without waiting, and drop its pages already written.

    Linux's ``POSIX_FADV_DONTNEED`` does both. Called every ``WRITEBACK_WINDOW`` bytes of an upload, it lets
    the disk work while the rest arrives (the fsync at commit has only the tail left), keeps a multi-GB
    upload from evicting the page cache that other requests use, and keeps it clear of dirty-page throttling.
    The call is advisory, so where it is missing or refused the upload simply goes on. A part writer names
    its own range (``length`` 0 is to the end of the file).
    """
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


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
        fd, self._fd = self._fd, -1
        return _publish_file(fd, self._tmp, self._store.path_for(digest))

    def _discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._tmp.unlink(missing_ok=True)


class FilesystemPartWriter(PartWriter):
    """Writes one part at its offset in the assembly file (parts may come from several processes)."""

    def __init__(self, store: FilesystemBlobStore, upload_id: str, fd: int, offset: int, length: int) -> None:
        super().__init__(offset, length)
        self._store = store
        self._upload_id = upload_id
        self._fd = fd
        self._flushed = offset

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        position = self.offset + self.size
        while view:
            written = os.pwrite(self._fd, view, position)
            position += written
            view = view[written:]
        if position - self._flushed >= WRITEBACK_WINDOW:
            _write_back_and_drop(self._fd, self._flushed, position - self._flushed)
            self._flushed = position

    def _finish(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
            self._store._writer_closed(self._upload_id)


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
        self._writers_lock = threading.Lock()
        self._open_writers: dict[str, int] = {}

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

    def open_file(self, digest: str) -> int:
        return os.open(self.path_for(digest), os.O_RDONLY)

    def delete(self, digest: str) -> bool:
        """Remove a blob (a read-only file in a writable folder, so unlinking it needs no chmod)."""
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

    def list_uploads(self) -> Iterator[UploadInfo]:
        for entry in sorted(self.uploads_dir.iterdir()):
            if entry.suffix not in (UPLOAD_SUFFIX, ASSEMBLY_SUFFIX):
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            yield UploadInfo(entry.stem, st.st_size, _mtime(st))

    def discard_upload(self, upload_id: str) -> bool:
        self._check_id(upload_id)
        found = False
        for suffix in (ASSEMBLY_SUFFIX, UPLOAD_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                (self.uploads_dir / f"{upload_id}{suffix}").unlink()
                found = True
        return found

    @staticmethod
    def _check_id(upload_id: str) -> None:
        if not UPLOAD_ID_RE.fullmatch(upload_id):
            raise InvalidInput(f"invalid upload id {upload_id!r}")

    def _assembly_path(self, upload_id: str) -> Path:
        self._check_id(upload_id)
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
        with self._writers_lock:
            try:
                fd = os.open(path, os.O_WRONLY)
            except FileNotFoundError:
                raise InvalidInput(f"no upload {upload_id!r} in progress") from None
            self._open_writers[upload_id] = self._open_writers.get(upload_id, 0) + 1
        return FilesystemPartWriter(self, upload_id, fd, offset, length)

    def _writer_closed(self, upload_id: str) -> None:
        with self._writers_lock:
            left = self._open_writers.pop(upload_id, 1) - 1
            if left:
                self._open_writers[upload_id] = left

    def read_assembly(
        self, upload_id: str, offset: int, length: int, chunk_size: int = VERIFY_CHUNK
    ) -> Iterator[bytes]:
        try:
            fd = os.open(self._assembly_path(upload_id), os.O_RDONLY)
        except FileNotFoundError:
            raise InvalidInput(f"no upload {upload_id!r} in progress") from None
        try:
            if os.fstat(fd).st_size < offset + length:
                raise SizeMismatch(f"the assembled upload is shorter than {offset + length} bytes")
            position, end = offset, offset + length
            while position < end:
                chunk = os.pread(fd, min(chunk_size, end - position), position)
                if not chunk:
                    break
                position += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    def _publish_assembly(self, upload_id: str, digest: str, size: int) -> BlobInfo:
        path = self._assembly_path(upload_id)
        with self._writers_lock:
            if self._open_writers.get(upload_id):
                raise Conflict("parts of this upload are still being written")
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                raise InvalidInput(f"no upload {upload_id!r} in progress") from None
            if os.fstat(fd).st_size != size:
                os.close(fd)
                self.discard_upload(upload_id)
                raise SizeMismatch(f"the assembled upload is not {size} bytes")
            return _publish_file(fd, path, self.path_for(digest))
