"""The default blob store: a folder of files named by their sha256.

Uploads are written to ``uploads/`` while hashing, fsynced, and renamed into ``blobs/sha256/xx/<hex>``
only once the digest matches, so a cut or failed upload never appears. Identical uploads land on the
same path, so an image pushed twice is stored once.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from traitlets import Unicode

from ..names import digest_hex
from .base import BlobInfo, BlobStore, BlobWriter

UPLOAD_SUFFIX = ".upload"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mtime(st: os.stat_result) -> dt.datetime:
    return dt.datetime.fromtimestamp(st.st_mtime, dt.UTC).replace(tzinfo=None)


class FilesystemBlobWriter(BlobWriter):
    def __init__(self, store: FilesystemBlobStore) -> None:
        super().__init__()
        self._store = store
        self._tmp = store.uploads_dir / f"{uuid.uuid4().hex}{UPLOAD_SUFFIX}"
        self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def _publish(self, digest: str) -> BlobInfo:
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        target = self._store.path_for(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            self._tmp.unlink()
            os.utime(target)
        else:
            os.replace(self._tmp, target)
            _fsync_dir(target.parent)
        st = target.stat()
        return BlobInfo(digest, st.st_size, _mtime(st))

    def _discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._tmp.unlink(missing_ok=True)


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

    def writer(self) -> FilesystemBlobWriter:
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
                st = entry.stat()
                yield BlobInfo(f"sha256.{entry.name}", st.st_size, _mtime(st))

    def reap_uploads(self, older_than: dt.timedelta) -> int:
        cutoff = dt.datetime.now(dt.UTC).replace(tzinfo=None) - older_than
        reaped = 0
        for entry in self.uploads_dir.glob(f"*{UPLOAD_SUFFIX}"):
            try:
                if _mtime(entry.stat()) < cutoff:
                    entry.unlink()
                    reaped += 1
            except FileNotFoundError:
                continue
        return reaped
