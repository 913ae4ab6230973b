"""Content-addressed blob storage.

A back end is a dozen methods (see ``base``): a streaming writer that hashes as bytes arrive and commits
only after the digest is verified, writers at an offset for uploads in parts, a reader at offset and
length, stat, delete, listings for garbage collection and, where the back end can, a URL the client may
be redirected to. Every back end passes the same
contract tests (``tests/registry/test_storage_contract.py``).
"""

from .base import BlobInfo, BlobStore, BlobWriter, PartWriter, PrefixHash, StoreUnavailable, UploadInfo
from .filesystem import FilesystemBlobStore

__all__ = [
    "BlobInfo",
    "BlobStore",
    "BlobWriter",
    "FilesystemBlobStore",
    "PartWriter",
    "PrefixHash",
    "StoreUnavailable",
    "UploadInfo",
]
