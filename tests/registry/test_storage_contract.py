"""The contract every BlobStore back end must honour, run against each of them.

A back end joins the suite as one more ``Backend`` in ``BACKENDS``: a factory and three small hooks that
reach below the interface (which uploads are in progress, and making uploads or blobs look old), so the
tests themselves never depend on how a back end stores its bytes. The S3 store runs against a real
S3-compatible server (moto's) on loopback; its ``uploads`` hook lists the whole bucket, so anything an
upload leaves behind fails the test.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sregistry_jupyter.registry.errors import Conflict, DigestMismatch, InvalidInput, SizeMismatch
from sregistry_jupyter.registry.orm import utcnow
from sregistry_jupyter.registry.storage import BlobStore, BlobWriter, FilesystemBlobStore, PrefixHash
from sregistry_jupyter.registry.storage.s3 import S3BlobStore
from tests.registry.s3_support import (
    back_date,
    bucket_contents,
    empty_bucket,
    make_s3_store,
    moto_endpoint,
    moto_process_endpoint,
    new_bucket,
    s3_bucket,
)

__all__ = ["moto_endpoint", "moto_process_endpoint", "s3_bucket"]


@dataclass(frozen=True)
class Backend:
    """How to build one back end (``make`` may ask for fixtures, such as a server to talk to), list its
    uploads in progress, and back-date its uploads and blobs."""

    name: str
    make: Callable[[pytest.FixtureRequest], BlobStore]
    uploads: Callable[[BlobStore], list[str]]
    age_uploads: Callable[[BlobStore, dt.timedelta], None]
    age_blob: Callable[[BlobStore, str, dt.timedelta], None]
    parts_in_any_order: bool = True
    memory_bound: int = 16 << 20  # what "flat" means for the store as ``measured_store`` configures it


def _fs_make(request: pytest.FixtureRequest) -> BlobStore:
    return FilesystemBlobStore(root=str(request.getfixturevalue("tmp_path") / "storage"))


def _fs_uploads(store: FilesystemBlobStore) -> list[str]:
    return sorted(p.name for p in store.uploads_dir.iterdir())


def _back_date(path: Path, age: dt.timedelta) -> None:
    when = time.time() - age.total_seconds()
    os.utime(path, (when, when))


def _fs_age_uploads(store: FilesystemBlobStore, age: dt.timedelta) -> None:
    """Back-date every upload file, as if its process had stalled or died ``age`` ago."""
    for path in store.uploads_dir.iterdir():
        _back_date(path, age)


def _fs_age_blob(store: FilesystemBlobStore, digest: str, age: dt.timedelta) -> None:
    _back_date(store.path_for(digest), age)


def _s3_make(request: pytest.FixtureRequest) -> BlobStore:
    endpoint, bucket = request.getfixturevalue("moto_endpoint"), request.getfixturevalue("s3_bucket")
    return make_s3_store(endpoint, bucket, prefix="registry", part_size=5 << 20)


def _s3_uploads(store: S3BlobStore) -> list[str]:
    """Everything in the bucket but blobs: upload markers and staged objects, and every S3 multipart
    upload in progress that no marker names (one upload, one entry)."""
    contents = bucket_contents(store)
    others = [k for k in contents["objects"] if not k.startswith(f"{store.prefix}blobs/")]
    named = {store.get_marker(k.rsplit("/", 1)[1][: -len(".json")])[0]["mpu"] for k in others if k.endswith(".json")}
    loose = [f"multipart:{u['Key']}" for u in store.multipart_uploads() if u["UploadId"] not in named]
    return sorted(others + loose)


def _s3_age_uploads(store: S3BlobStore, age: dt.timedelta) -> None:
    for key in bucket_contents(store)["objects"]:
        if key.startswith(f"{store.prefix}uploads/"):
            back_date(store.bucket, key, age)


def _s3_age_blob(store: S3BlobStore, digest: str, age: dt.timedelta) -> None:
    back_date(store.bucket, store.blob_key(digest), age)


BACKENDS = [
    Backend("filesystem", _fs_make, _fs_uploads, _fs_age_uploads, _fs_age_blob),
    # S3 parts are buffered whole: one filling, one uploading, one spare kept, of 5 MiB each.
    Backend(
        "s3", _s3_make, _s3_uploads, _s3_age_uploads, _s3_age_blob, parts_in_any_order=False, memory_bound=28 << 20
    ),
]


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param


@pytest.fixture
def store(backend: Backend, request: pytest.FixtureRequest) -> BlobStore:
    return backend.make(request)


@pytest.fixture
def measured_store(backend: Backend, request: pytest.FixtureRequest) -> Iterator[BlobStore]:
    """The back end, with nothing else in this process that holds its bytes (so its memory can be measured):
    for S3, a store on a moto server in another process."""
    if backend.name != "s3":
        yield backend.make(request)
        return
    endpoint = request.getfixturevalue("moto_process_endpoint")
    bucket = new_bucket(endpoint)
    try:
        yield make_s3_store(endpoint, bucket, part_size=5 << 20, parts_in_flight=1)
    finally:
        empty_bucket(endpoint, bucket)


def digest_of(data: bytes) -> str:
    return "sha256." + hashlib.sha256(data).hexdigest()


def put(store: BlobStore, data: bytes, chunk: int = 65_536, declared: bool = False) -> str:
    """Store ``data`` through a writer (told its digest up front if ``declared``); returns the digest."""
    writer = store.writer(digest_of(data) if declared else None)
    for start in range(0, len(data), chunk):
        writer.write(data[start : start + chunk])
    return writer.commit(digest_of(data), len(data)).digest


def spans(size: int, part_size: int) -> list[tuple[int, int]]:
    return [(offset, min(part_size, size - offset)) for offset in range(0, size, part_size)] or [(0, 0)]


def unit(store: BlobStore, size: int) -> int:
    """``size``, or the store's smallest part if that is larger: tests speak of parts in these units."""
    return max(size, store.min_part_size)


def send_parts(store: BlobStore, upload_id: str, data: bytes, part_size: int, backend: Backend) -> None:
    """Write every part, each in two uneven pieces: last first where the store takes parts in any order."""
    order = reversed if backend.parts_in_any_order else list
    for offset, length in order(spans(len(data), part_size)):
        part = store.part_writer(upload_id, offset, length)
        piece = data[offset : offset + length]
        part.write(piece[: length // 3])
        part.write(memoryview(piece)[length // 3 :])
        part.finish()


def use_part(store: BlobStore, upload_id: str, data: bytes) -> None:
    """Send ``data`` as the first part of an assembly (a store may find out only then that there is none)."""
    part = store.part_writer(upload_id, 0, len(data))
    part.write(data)
    part.finish()


def uploads_listed(store: BlobStore) -> list[str]:
    return sorted(u.upload_id for u in store.list_uploads())


def listed(store: BlobStore) -> list[str]:
    return sorted(b.digest for b in store.list_blobs())


def assert_nothing_left(store: BlobStore, backend: Backend, digest: str) -> None:
    assert store.stat(digest) is None
    assert listed(store) == []
    assert backend.uploads(store) == []
    assert uploads_listed(store) == []


def test_odd_sized_chunks_commit_to_the_right_blob(store: BlobStore, backend: Backend) -> None:
    data = os.urandom(300_007)
    sizes = [1, 7, 4096, 65_537, 13, 100_003]
    writer = store.writer()
    position = 0
    for size in itertools.cycle(sizes):
        if position >= len(data):
            break
        writer.write(data[position : position + size])
        position += size
    assert writer.size == len(data)
    assert writer.digest == digest_of(data)
    info = writer.commit(digest_of(data), len(data))
    assert (info.digest, info.size) == (digest_of(data), len(data))
    stat = store.stat(info.digest)
    assert stat is not None
    assert (stat.digest, stat.size) == (digest_of(data), len(data))
    assert stat.modified.tzinfo is None
    assert abs(stat.modified - utcnow()) < dt.timedelta(minutes=1)
    assert b"".join(store.read(info.digest)) == data
    assert backend.uploads(store) == []


def test_memoryview_and_bytearray_are_accepted(store: BlobStore) -> None:
    data = os.urandom(10_000)
    writer = store.writer()
    writer.write(memoryview(data)[:4000])
    writer.write(bytearray(data[4000:]))
    digest = writer.commit(digest_of(data)).digest
    assert b"".join(store.read(digest)) == data


@pytest.mark.parametrize(
    ("offset", "length", "expected"),
    [
        (0, 100, slice(0, 100)),
        (4000, 2500, slice(4000, 6500)),
        (9_900, 100, slice(9_900, 10_000)),
        (5000, 0, slice(0, 0)),
        (9_950, 500, slice(9_950, 10_000)),
        (10_000, 10, slice(0, 0)),
        (20_000, 10, slice(0, 0)),
        (6000, None, slice(6000, 10_000)),
    ],
    ids=["start", "middle", "end", "zero-length", "past-the-end", "at-the-end", "far-beyond", "to-the-end"],
)
def test_read_at_offset_and_length(store: BlobStore, offset: int, length: int | None, expected: slice) -> None:
    data = os.urandom(10_000)
    digest = put(store, data)
    assert b"".join(store.read(digest, offset, length)) == data[expected]
    if length is not None:
        assert store.read_at(digest, offset, length) == data[expected]


def test_read_respects_chunk_size(store: BlobStore) -> None:
    data = os.urandom(10_500)
    digest = put(store, data)
    chunks = list(store.read(digest, 250, None, chunk_size=1000))
    assert b"".join(chunks) == data[250:]
    assert all(0 < len(c) <= 1000 for c in chunks)


def test_wrong_digest_leaves_nothing(store: BlobStore, backend: Backend) -> None:
    data = os.urandom(50_000)
    writer = store.writer()
    writer.write(data)
    with pytest.raises(DigestMismatch):
        writer.commit(digest_of(b"other"), len(data))
    assert_nothing_left(store, backend, digest_of(data))
    assert store.stat(digest_of(b"other")) is None


def test_wrong_size_leaves_nothing(store: BlobStore, backend: Backend) -> None:
    data = os.urandom(50_000)
    writer = store.writer()
    writer.write(data)
    with pytest.raises(SizeMismatch):
        writer.commit(digest_of(data), len(data) + 1)
    assert_nothing_left(store, backend, digest_of(data))


def test_cancel_leaves_nothing_and_may_be_repeated(store: BlobStore, backend: Backend) -> None:
    data = os.urandom(50_000)
    writer = store.writer()
    writer.write(data)
    assert len(backend.uploads(store)) == 1
    writer.cancel()
    writer.cancel()
    assert_nothing_left(store, backend, digest_of(data))


@pytest.mark.parametrize("finish", ["commit", "cancel"])
def test_a_finished_writer_refuses_more(store: BlobStore, finish: str) -> None:
    data = b"finished"
    writer = store.writer()
    writer.write(data)
    if finish == "commit":
        writer.commit(digest_of(data))
    else:
        writer.cancel()
    with pytest.raises(ValueError):
        writer.write(b"more")
    with pytest.raises(ValueError):
        writer.commit(digest_of(data))
    assert listed(store) == ([digest_of(data)] if finish == "commit" else [])


def test_identical_content_committed_twice_is_stored_once(store: BlobStore, backend: Backend) -> None:
    data = os.urandom(20_000)
    assert put(store, data) == put(store, data, chunk=999)
    assert listed(store) == [digest_of(data)]
    assert b"".join(store.read(digest_of(data))) == data
    assert backend.uploads(store) == []


def test_concurrent_identical_commits_store_one_blob(store: BlobStore, backend: Backend) -> None:
    data = os.urandom(200_000)
    writers: list[BlobWriter] = [store.writer(), store.writer()]
    for writer in writers:
        writer.write(data)
    barrier = threading.Barrier(len(writers))
    results: list[object] = []

    def commit(writer: BlobWriter) -> None:
        barrier.wait()
        try:
            results.append(writer.commit(digest_of(data), len(data)).digest)
        except Exception as error:
            results.append(error)

    threads = [threading.Thread(target=commit, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [digest_of(data)] * len(writers)
    assert listed(store) == [digest_of(data)]
    assert b"".join(store.read(digest_of(data))) == data
    assert backend.uploads(store) == []


def test_concurrent_readers_each_get_their_own_range(store: BlobStore) -> None:
    data = os.urandom(3 << 20)
    digest = put(store, data, chunk=1 << 20, declared=True)
    spans_read = [(offset, 200_001) for offset in range(0, len(data), 250_000)]
    results: dict[int, bytes] = {}
    barrier = threading.Barrier(len(spans_read))

    def read(offset: int, length: int) -> None:
        barrier.wait()
        results[offset] = b"".join(store.read(digest, offset, length, chunk_size=65_536))

    threads = [threading.Thread(target=read, args=span) for span in spans_read]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert {o: results.get(o) for o, _ in spans_read} == {o: data[o : o + n] for o, n in spans_read}


def test_a_redirect_url_serves_the_blob_and_its_ranges_without_credentials(store: BlobStore, backend: Backend) -> None:
    """A store that can be reached directly hands out a short-lived URL (the filesystem store gives none,
    and the registry serves its own signed URL)."""
    data = os.urandom(100_000)
    digest = put(store, data)
    url = store.redirect_url(digest, 300, filename="tool.sif")
    if backend.name == "filesystem":
        assert url is None
        return
    assert url is not None and "X-Amz-Expires=300" in url
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["Content-Disposition"] == 'attachment; filename="tool.sif"'
    ranged = httpx.get(url, headers={"Range": "bytes=1000-1999"})
    assert ranged.status_code == 206 and ranged.content == data[1000:2000]
    assert ranged.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    store.delete(digest)
    assert httpx.get(url).status_code in (403, 404)  # S3 answers 403 for a missing key without ListBucket


def test_delete_reports_whether_the_blob_existed(store: BlobStore) -> None:
    keep, drop = os.urandom(1000), os.urandom(1000)
    put(store, keep)
    digest = put(store, drop)
    assert store.delete(digest) is True
    assert store.delete(digest) is False
    assert store.stat(digest) is None
    assert listed(store) == [digest_of(keep)]


def test_list_blobs_lists_exactly_the_committed_ones(store: BlobStore) -> None:
    assert listed(store) == []
    blobs = {digest_of(d): d for d in (os.urandom(n) for n in (0, 1, 4096, 70_000))}
    for data in blobs.values():
        put(store, data)
    pending = store.writer()
    pending.write(b"in progress")
    failed = store.writer()
    failed.write(b"refused")
    with pytest.raises(DigestMismatch):
        failed.commit(digest_of(b"something else"))
    infos = {b.digest: b for b in store.list_blobs()}
    assert sorted(infos) == sorted(blobs)
    assert {d: i.size for d, i in infos.items()} == {d: len(data) for d, data in blobs.items()}
    pending.cancel()


def test_unfinished_uploads_are_listed_with_their_age_and_discarded_one_by_one(
    store: BlobStore, backend: Backend
) -> None:
    stale = store.writer()
    stale.write(b"abandoned by a crashed process")
    store.start_assembly("stale-assembly", 100)
    backend.age_uploads(store, dt.timedelta(hours=3))
    fresh = store.writer()
    fresh.write(b"still arriving")
    listing = {u.upload_id: u for u in store.list_uploads()}
    assert len(listing) == len(backend.uploads(store)) == 3
    old = sorted(i for i, u in listing.items() if u.modified < utcnow() - dt.timedelta(hours=2))
    assert "stale-assembly" in old and len(old) == 2
    assert listing["stale-assembly"].size == 100
    for upload_id in old:
        assert store.discard_upload(upload_id) is True
        assert store.discard_upload(upload_id) is False
    assert len(backend.uploads(store)) == 1
    with pytest.raises(InvalidInput):
        use_part(store, "stale-assembly", b"x" * 100)
    fresh.write(b", and done")
    data = b"still arriving, and done"
    assert fresh.commit(digest_of(data), len(data)).digest == digest_of(data)
    assert uploads_listed(store) == []
    assert backend.uploads(store) == []
    stale.cancel()
    assert listed(store) == [digest_of(data)]


@pytest.mark.parametrize("how", ["writer", "assembly"])
def test_committing_an_existing_blob_again_makes_it_young(store: BlobStore, backend: Backend, how: str) -> None:
    data = os.urandom(5000)
    digest = put(store, data)
    backend.age_blob(store, digest, dt.timedelta(days=2))
    assert store.stat(digest).modified < utcnow() - dt.timedelta(days=1)
    if how == "writer":
        put(store, data)
    else:
        store.start_assembly("again-upload", len(data))
        send_parts(store, "again-upload", data, unit(store, 2048), backend)
        store.commit_assembly("again-upload", digest, len(data))
    assert store.stat(digest).modified > utcnow() - dt.timedelta(minutes=1)
    assert listed(store) == [digest]
    assert backend.uploads(store) == []


@pytest.mark.parametrize(("parts", "declared"), [(3.8, False), (1, False), (0.0001, True), (0, False), (2.5, True)])
def test_assembly_commits_to_the_right_blob(store: BlobStore, backend: Backend, parts: float, declared: bool) -> None:
    """Parts arrive last first where the store allows it, in order elsewhere; with the digest announced
    at the start or not."""
    part_size = unit(store, 65_536)
    size = int(parts * part_size) + (1 if parts > 1 else 0)
    data = os.urandom(size)
    store.start_assembly("upload-0001", size, digest_of(data) if declared else None)
    send_parts(store, "upload-0001", data, part_size, backend)
    info = store.commit_assembly("upload-0001", digest_of(data), size)
    assert (info.digest, info.size) == (digest_of(data), size)
    assert b"".join(store.read(info.digest)) == data
    assert listed(store) == [digest_of(data)]
    assert backend.uploads(store) == []


def test_a_part_that_skips_ahead(store: BlobStore, backend: Backend) -> None:
    """A store that takes parts in any order takes it; one that carries the whole file's hash from part to
    part refuses it (and a part sent again), and the upload goes on from where it was."""
    part_size = unit(store, 4096)
    data = os.urandom(2 * part_size + 10)
    store.start_assembly("upload-0009", len(data))
    ahead = store.part_writer("upload-0009", part_size, part_size)
    if backend.parts_in_any_order:
        ahead.write(data[part_size : 2 * part_size])
        ahead.finish()
        offsets = [0, 2 * part_size]
    else:
        with pytest.raises(Conflict):
            ahead.write(data[part_size : 2 * part_size])
        ahead.cancel()
        use_part(store, "upload-0009", data[:part_size])
        again = store.part_writer("upload-0009", 0, part_size)
        with pytest.raises(Conflict):
            again.write(data[:part_size])
        again.cancel()
        offsets = [part_size, 2 * part_size]
    for offset in offsets:
        part = store.part_writer("upload-0009", offset, min(part_size, len(data) - offset))
        part.write(data[offset : offset + part_size])
        part.finish()
    assert store.commit_assembly("upload-0009", digest_of(data), len(data)).digest == digest_of(data)
    assert b"".join(store.read(digest_of(data))) == data
    assert backend.uploads(store) == []


def test_assembly_with_wrong_digest_leaves_nothing(store: BlobStore, backend: Backend) -> None:
    part_size = unit(store, 30_000)
    data = os.urandom(int(part_size * 3.3))
    store.start_assembly("upload-0002", len(data), digest_of(data))
    send_parts(store, "upload-0002", data, part_size, backend)
    with pytest.raises(DigestMismatch):
        store.commit_assembly("upload-0002", digest_of(b"other"), len(data))
    assert_nothing_left(store, backend, digest_of(data))


def test_assembly_with_a_missing_part_leaves_nothing(store: BlobStore, backend: Backend) -> None:
    half = unit(store, 50_000)
    data = os.urandom(2 * half)
    store.start_assembly("upload-0003", len(data))
    part = store.part_writer("upload-0003", 0, half)
    part.write(data[:half])
    part.finish()
    with pytest.raises((DigestMismatch, SizeMismatch)):
        store.commit_assembly("upload-0003", digest_of(data), len(data))
    assert_nothing_left(store, backend, digest_of(data))


def test_assembly_of_the_wrong_size_leaves_nothing(store: BlobStore, backend: Backend) -> None:
    part_size = unit(store, 8192)
    data = os.urandom(int(part_size * 2.5))
    store.start_assembly("upload-0004", len(data))
    send_parts(store, "upload-0004", data, part_size, backend)
    with pytest.raises(SizeMismatch):
        store.commit_assembly("upload-0004", digest_of(data), len(data) + 1)
    assert_nothing_left(store, backend, digest_of(data))


def test_a_part_must_have_its_declared_length(store: BlobStore, backend: Backend) -> None:
    half = unit(store, 50)
    store.start_assembly("upload-0005", 2 * half)
    long = store.part_writer("upload-0005", 0, half)
    with pytest.raises(SizeMismatch):
        long.write(b"x" * (half + 1))
    long.cancel()
    short = store.part_writer("upload-0005", 0, half)
    short.write(b"x" * (half - 1))
    with pytest.raises(SizeMismatch):
        short.finish()
    short.cancel()
    store.discard_upload("upload-0005")
    assert backend.uploads(store) == []


def test_discarding_an_assembly_leaves_nothing_and_may_be_repeated(store: BlobStore, backend: Backend) -> None:
    data = os.urandom(10_000)
    store.start_assembly("upload-0006", len(data))
    send_parts(store, "upload-0006", data, unit(store, 4096), backend)
    assert len(backend.uploads(store)) == 1
    store.discard_upload("upload-0006")
    store.discard_upload("upload-0006")
    assert_nothing_left(store, backend, digest_of(data))
    with pytest.raises(InvalidInput):
        use_part(store, "upload-0006", b"x" * 10)


def test_unknown_assemblies_are_refused(store: BlobStore, backend: Backend) -> None:
    with pytest.raises(InvalidInput):
        use_part(store, "never-started", b"x" * 10)
    with pytest.raises(InvalidInput):
        store.commit_assembly("never-started", digest_of(b""), 0)
    store.discard_upload("never-started")
    assert backend.uploads(store) == []


@pytest.mark.parametrize(
    "upload_id", ["../../blobs/x", "a/b/c/d/e/f", "short", "", "x" * 65, "upload\n0001", "ab.cd.ef.gh"]
)
def test_malformed_upload_ids_are_refused(store: BlobStore, backend: Backend, upload_id: str) -> None:
    with pytest.raises(InvalidInput):
        store.start_assembly(upload_id, 10)
    with pytest.raises(InvalidInput):
        store.part_writer(upload_id, 0, 10)
    with pytest.raises(InvalidInput):
        store.commit_assembly(upload_id, digest_of(b""), 0)
    with pytest.raises(InvalidInput):
        store.discard_upload(upload_id)
    assert backend.uploads(store) == []
    assert listed(store) == []


def test_parts_hashed_in_order_as_they_stream_are_not_read_back(store: BlobStore, backend: Backend) -> None:
    """With this process's running hash, only the part it missed is read back; a store that carries the
    hash itself (the parts arrive in order there) reads back nothing."""
    part_size = unit(store, 64_000)
    data = os.urandom(3 * part_size + 8_000)
    store.start_assembly("in-order-01", len(data))
    prefix = PrefixHash()
    for offset, length in spans(len(data), part_size)[:-1]:
        part = store.part_writer("in-order-01", offset, length)
        part.hash_into(prefix)
        part.write(data[offset : offset + length])
        part.finish()
    last_offset, last_length = spans(len(data), part_size)[-1]
    part = store.part_writer("in-order-01", last_offset, last_length)
    part.write(data[last_offset:])
    part.finish()
    read_back: list[tuple[int, int]] = []
    original = store.read_assembly

    def spying(upload_id: str, offset: int, length: int, *args):
        read_back.append((offset, length))
        return original(upload_id, offset, length, *args)

    store.read_assembly = spying  # type: ignore[method-assign]
    info = store.commit_assembly("in-order-01", digest_of(data), len(data), prefix)
    assert read_back == ([(last_offset, last_length)] if backend.parts_in_any_order else [])
    assert b"".join(store.read(info.digest)) == data
    assert backend.uploads(store) == []


def test_a_running_hash_must_end_where_the_part_begins(store: BlobStore) -> None:
    store.start_assembly("in-order-02", 100)
    part = store.part_writer("in-order-02", 50, 50)
    with pytest.raises(ValueError):
        part.hash_into(PrefixHash())
    part.cancel()
    store.discard_upload("in-order-02")


def test_no_part_writer_is_open_when_an_assembly_is_published(store: BlobStore, backend: Backend) -> None:
    half = unit(store, 5000)
    data = os.urandom(2 * half)
    store.start_assembly("locked-0001", len(data))
    send_parts(store, "locked-0001", data, half, backend)
    late = store.part_writer("locked-0001", 0, half)
    with pytest.raises(Conflict):
        store.commit_assembly("locked-0001", digest_of(data), len(data))
    assert store.stat(digest_of(data)) is None
    if backend.parts_in_any_order:
        late.write(data[:half])
        late.finish()
    else:
        late.cancel()
    info = store.commit_assembly("locked-0001", digest_of(data), len(data))
    with pytest.raises(InvalidInput):
        use_part(store, "locked-0001", data[:half])
    assert b"".join(store.read(info.digest)) == data
    assert backend.uploads(store) == []


def test_published_blobs_are_read_only_and_verified_bytes_replace_a_bad_copy(tmp_path: Path) -> None:
    store = FilesystemBlobStore(root=str(tmp_path / "storage"))
    data = os.urandom(10_000)
    digest = put(store, data)
    path = store.path_for(digest)
    assert path.stat().st_mode & 0o777 == 0o444
    path.chmod(0o644)
    path.write_bytes(b"x" * len(data))
    put(store, data)
    assert path.read_bytes() == data
    assert path.stat().st_mode & 0o777 == 0o444


def test_memory_stays_flat_for_a_large_blob(measured_store: BlobStore, backend: Backend) -> None:
    store = measured_store
    chunk = os.urandom(1 << 20)
    count = 256
    expected = hashlib.sha256()
    for _ in range(count):
        expected.update(chunk)
    digest = "sha256." + expected.hexdigest()
    tracemalloc.start()
    try:
        writer = store.writer()
        for _ in range(count):
            writer.write(chunk)
        info = writer.commit(digest, count << 20)
        read = sum(len(c) for c in store.read(digest))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        store.delete(digest)
    assert info.size == read == count << 20
    assert peak < backend.memory_bound, f"peak {peak / (1 << 20):.1f} MiB"


def test_memory_stays_flat_for_a_large_assembly(measured_store: BlobStore, backend: Backend) -> None:
    store = measured_store
    chunk = os.urandom(1 << 20)
    size, part_size = 64 << 20, 16 << 20
    digest = "sha256." + hashlib.sha256(chunk * (size >> 20)).hexdigest()
    tracemalloc.start()
    try:
        store.start_assembly("large-upload", size)
        for offset, length in spans(size, part_size):
            part = store.part_writer("large-upload", offset, length)
            for _ in range(length >> 20):
                part.write(chunk)
            part.finish()
        info = store.commit_assembly("large-upload", digest, size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        store.delete(digest)
    assert info.size == size
    assert peak < backend.memory_bound, f"peak {peak / (1 << 20):.1f} MiB"


BAD_DIGESTS = [
    "sha256.../../x",
    "sha256." + "0" * 62 + "/..",
    "sha256." + "A" * 64,
    "sha256." + "0" * 63,
    "sha256." + "0" * 65,
    "sha256." + "0" * 64 + "\n",
    "../" + "0" * 64,
    "/etc/passwd",
    "md5." + "0" * 32,
    "",
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_malformed_digests_are_refused(store: BlobStore, digest: str) -> None:
    put(store, b"a neighbour")
    with pytest.raises(InvalidInput):
        store.stat(digest)
    with pytest.raises(InvalidInput):
        list(store.read(digest))
    with pytest.raises(InvalidInput):
        store.read_at(digest, 0, 10)
    with pytest.raises(InvalidInput):
        store.delete(digest)
    writer = store.writer()
    writer.write(b"a neighbour")
    with pytest.raises(DigestMismatch):
        writer.commit(digest)
    assert listed(store) == [digest_of(b"a neighbour")]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_filesystem_paths_never_leave_the_blob_folder(tmp_path: Path, digest: str) -> None:
    store = FilesystemBlobStore(root=str(tmp_path / "storage"))
    with pytest.raises(InvalidInput):
        store.path_for(digest)
    good = store.path_for(digest_of(b"x")).resolve()
    assert good.is_relative_to(store.blobs_dir.resolve())
    assert good.name == digest_of(b"x")[len("sha256.") :]
