"""What is particular to the S3 store, beyond the contract every store honours: how it is chosen and
configured, and what it does when two requests race on one upload."""

from __future__ import annotations

import hashlib
import os

import pytest
from traitlets import TraitError

from sregistry_jupyter.registry.app import RegistryApp
from sregistry_jupyter.registry.errors import Conflict
from sregistry_jupyter.registry.storage import FilesystemBlobStore
from sregistry_jupyter.registry.storage.resumable import ResumableSHA256
from sregistry_jupyter.registry.storage.s3 import MIN_PART_SIZE, S3BlobStore
from tests.registry.s3_support import bucket_contents, make_s3_store, moto_endpoint, s3_bucket

__all__ = ["moto_endpoint", "s3_bucket"]


@pytest.mark.parametrize(
    ("value", "chosen"),
    [
        ("s3", S3BlobStore),
        ("S3", S3BlobStore),
        ("filesystem", FilesystemBlobStore),
        ("sregistry_jupyter.registry.storage.s3.S3BlobStore", S3BlobStore),
    ],
)
def test_the_blob_store_is_chosen_by_alias_or_import_path(value: str, chosen: type) -> None:
    app = RegistryApp()
    app.blob_store_class = value
    assert app.blob_store_class is chosen
    assert chosen in app.classes


def test_an_unknown_blob_store_is_refused() -> None:
    with pytest.raises(TraitError):
        RegistryApp().blob_store_class = "ftp"


def test_parts_below_the_s3_minimum_are_refused(moto_endpoint: str, s3_bucket: str) -> None:
    with pytest.raises(TraitError):
        make_s3_store(moto_endpoint, s3_bucket, part_size=MIN_PART_SIZE - 1)


def test_the_hash_state_resumes_byte_for_byte_as_hashlib() -> None:
    data = os.urandom(1_000_003)
    first = ResumableSHA256()
    first.update(data[:333_333])
    resumed = ResumableSHA256.from_state(first.state())
    resumed.update(memoryview(data)[333_333:])
    assert resumed.hexdigest() == hashlib.sha256(data).hexdigest()
    assert first.hexdigest() == hashlib.sha256(data[:333_333]).hexdigest()
    with pytest.raises(ValueError):
        ResumableSHA256.from_state(b"short")


def test_a_part_sent_twice_at_once_never_publishes_bytes_other_than_the_digests(
    moto_endpoint: str, s3_bucket: str
) -> None:
    """Two requests write the same part with different bytes: the second cannot record itself (the marker
    changed under it), and if its bytes replaced the first's in S3 the completion notices and discards the
    upload rather than publish bytes that do not match the digest."""
    store = make_s3_store(moto_endpoint, s3_bucket, part_size=MIN_PART_SIZE)
    genuine, other = os.urandom(MIN_PART_SIZE), os.urandom(MIN_PART_SIZE)
    digest = "sha256." + hashlib.sha256(genuine).hexdigest()
    store.start_assembly("race-0001", MIN_PART_SIZE, digest)
    late = store.part_writer("race-0001", 0, MIN_PART_SIZE)
    late.write(other[:1000])
    first = store.part_writer("race-0001", 0, MIN_PART_SIZE)
    first.write(genuine)
    first.finish()
    with pytest.raises(Conflict):
        late.write(other[1000:])
    late.cancel()
    with pytest.raises(Conflict):
        store.commit_assembly("race-0001", digest, MIN_PART_SIZE)
    assert store.stat(digest) is None
    assert bucket_contents(store) == {"objects": [], "multipart": []}
