"""Blob storage in an S3-compatible object store (AWS S3, Ceph RGW, MinIO, ...).

Blobs live at ``<prefix>blobs/sha256/xx/<hex>``. Every upload is an S3 multipart upload fed while hashing
(parts of ``part_size``, ``parts_in_flight`` of them uploading while the next fills, so memory stays flat;
see ``s3_uploads``) and completed only once the digest matches: an object appears whole and verified, or
not at all. An upload whose digest is known when it starts goes straight to its final key; otherwise it is
completed under ``uploads/`` and copied into place inside the store.

Each upload in progress has a small marker, ``<prefix>uploads/<id>.json``, naming its S3 multipart upload.
For a library client's multipart upload the marker also carries what has arrived: the S3 parts and the
saved state of the whole file's SHA-256, so that whichever registry process receives the next part
carries the hash on and completion needs no read of the assembled object. That is why such parts must
arrive in order (the library client sends them so): SHA-256 cannot be combined from the hashes of
pieces, S3 offers no whole-object SHA-256 for multipart objects, and the parts of an unfinished S3
multipart upload cannot be read. Markers make abandoned uploads findable by age, for garbage collection.

boto3 calls block, so the registry calls this store from worker threads; part uploads run on the store's
own bounded pool, and a cancel from the event loop is handed to that pool too.
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime as dt
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from traitlets import Bool, Enum, Integer, TraitError, Unicode, validate

from ..errors import Conflict, DigestMismatch, InvalidInput, SizeMismatch
from ..names import digest_hex, is_digest
from .base import VERIFY_CHUNK, BlobInfo, BlobStore, PrefixHash, StoreUnavailable, UploadInfo
from .resumable import ResumableSHA256
from .s3_uploads import MIN_PART_SIZE, S3BlobWriter, S3PartWriter

MAX_PARTS = 10_000
UPLOAD_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _naive_utc(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.UTC).replace(tzinfo=None)


class S3BlobStore(BlobStore):
    """Blobs in an S3 bucket; endpoint, region and credentials come from the usual AWS variables and
    files (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ...) unless set here."""

    bucket = Unicode("", config=True, help="The bucket blobs are stored in (it must exist).")
    prefix = Unicode("", config=True, help="A key prefix for everything the registry stores, such as 'registry/'.")
    endpoint_url = Unicode("", config=True, help="The S3 endpoint (default: $AWS_ENDPOINT_URL, else AWS).")
    region_name = Unicode("", config=True, help="The region (default: $AWS_REGION / the AWS config file).")
    access_key_id = Unicode("", config=True, help="Access key (default: $AWS_ACCESS_KEY_ID / the credentials file).")
    secret_access_key = Unicode("", config=True, help="Secret key (default: $AWS_SECRET_ACCESS_KEY / credentials).")
    session_token = Unicode("", config=True, help="Session token for temporary credentials (default: none).")
    profile = Unicode("", config=True, help="A profile of the AWS config files (default: $AWS_PROFILE).")
    addressing_style = Enum(
        ["auto", "path", "virtual"], "auto", config=True, help="Bucket in the path or in the host name."
    )
    redirect_downloads = Bool(
        True,
        config=True,
        help="Downloads answer 303 to a presigned URL of the object store; False streams them through the "
        "registry, for stores the clients cannot reach.",
    )
    part_size = Integer(8 << 20, config=True, help="Size of the S3 parts uploads are sent in (at least 5 MiB).")
    parts_in_flight = Integer(
        2, config=True, help="S3 parts one upload may have uploading at once (its memory: this many parts, plus one)."
    )
    max_workers = Integer(8, config=True, help="Most S3 part uploads in flight at once in all, and connections kept.")

    min_part_size = MIN_PART_SIZE

    @validate("parts_in_flight", "max_workers")
    def _at_least_one(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 1:
            raise TraitError(f"{proposal['trait'].name} must be at least 1")
        return proposal["value"]

    @validate("part_size")
    def _valid_part_size(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < MIN_PART_SIZE:
            raise TraitError("S3 parts must be at least 5 MiB")
        return proposal["value"]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not self.bucket:
            raise StoreUnavailable("S3BlobStore needs a bucket: set --S3BlobStore.bucket")
        if self.prefix and not self.prefix.endswith("/"):
            self.prefix += "/"
        session = boto3.session.Session(
            aws_access_key_id=self.access_key_id or None,
            aws_secret_access_key=self.secret_access_key or None,
            aws_session_token=self.session_token or None,
            region_name=self.region_name or None,
            profile_name=self.profile or None,
        )
        config = Config(
            max_pool_connections=self.max_workers + 4,
            s3={"addressing_style": self.addressing_style},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=10,
            read_timeout=120,
            signature_version="s3v4",
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client = session.client("s3", endpoint_url=self.endpoint_url or None, config=config)
        self.pool = concurrent.futures.ThreadPoolExecutor(self.max_workers, thread_name_prefix="s3-parts")
        self._writers_lock = threading.Lock()
        self._open_writers: dict[str, int] = {}
        self._spares: list[bytearray] = []
        self._check_bucket()

    def _check_bucket(self) -> None:
        """Fail at once, in one line, if the bucket cannot be used (resolving the credentials on the way, so
        that presigning later never has to look for them)."""
        where = self.client.meta.endpoint_url
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            code = _code(error)
            why = {"404": "does not exist", "NoSuchBucket": "does not exist", "403": "refuses these credentials"}
            raise StoreUnavailable(
                f"S3 bucket {self.bucket!r} at {where} {why.get(code, f'cannot be used ({code})')}"
            ) from None
        except BotoCoreError as error:
            raise StoreUnavailable(f"S3 bucket {self.bucket!r} at {where} cannot be reached: {error}") from None

    def spare_buffer(self, length: int) -> bytearray | None:
        """A part buffer of at least ``length`` bytes that an earlier upload gave back, if there is one."""
        with self._writers_lock:
            for index, buffer in enumerate(self._spares):
                if len(buffer) >= length:
                    return self._spares.pop(index)
        return None

    def keep_spare(self, buffer: bytearray) -> None:
        """Keep a part buffer for the next part, up to ``parts_in_flight`` spares (the rest are freed)."""
        with self._writers_lock:
            if len(self._spares) < self.parts_in_flight:
                self._spares.append(buffer)

    # keys

    def blob_key(self, digest: str) -> str:
        hexdigest = digest_hex(digest)
        return f"{self.prefix}blobs/sha256/{hexdigest[:2]}/{hexdigest}"

    def staging_key(self, upload_id: str) -> str:
        return f"{self.prefix}uploads/{upload_id}.data"

    def marker_key(self, upload_id: str) -> str:
        if not UPLOAD_ID_RE.fullmatch(upload_id):
            raise InvalidInput(f"invalid upload id {upload_id!r}")
        return f"{self.prefix}uploads/{upload_id}.json"

    # small S3 operations used by the writers

    def create_multipart(self, key: str) -> str:
        return self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType="application/octet-stream"
        )["UploadId"]

    def complete_multipart(self, key: str, mpu_id: str, parts: list[dict[str, Any]]) -> None:
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=mpu_id, MultipartUpload={"Parts": parts}
        )

    def abort_multipart(self, key: str, mpu_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=mpu_id)
        except ClientError as error:
            if _code(error) not in MISSING:
                raise

    def copy_into_place(self, key: str, digest: str) -> None:
        """Copy a verified upload to its content address inside the store (multipart above 5 GiB)."""
        self.client.copy(
            {"Bucket": self.bucket, "Key": key},
            self.bucket,
            self.blob_key(digest),
            Config=TransferConfig(multipart_threshold=1 << 30, multipart_chunksize=256 << 20, use_threads=False),
        )

    def put_marker(self, upload_id: str, marker: dict[str, Any], if_match: str = "") -> None:
        extra = {"IfMatch": if_match} if if_match else {}
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.marker_key(upload_id),
                Body=json.dumps(marker).encode(),
                ContentType="application/json",
                **extra,
            )
        except ClientError as error:
            if _code(error) in {"PreconditionFailed", "412", *MISSING}:
                raise Conflict("another request changed this upload at the same time; it cannot go on") from None
            raise

    def get_marker(self, upload_id: str) -> tuple[dict[str, Any], str]:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.marker_key(upload_id))
        except ClientError as error:
            if _code(error) in MISSING:
                raise InvalidInput(f"no upload {upload_id!r} in progress") from None
            raise
        return json.loads(answer["Body"].read()), answer["ETag"]

    def delete_marker(self, upload_id: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.marker_key(upload_id))

    # the BlobStore interface

    def writer(self, digest: str | None = None) -> S3BlobWriter:
        return S3BlobWriter(self, digest)

    def stat(self, digest: str) -> BlobInfo | None:
        key = self.blob_key(digest)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in MISSING:
                return None
            raise
        return BlobInfo(digest, head["ContentLength"], _naive_utc(head["LastModified"]))

    def read(
        self, digest: str, offset: int = 0, length: int | None = None, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        key = self.blob_key(digest)
        return self._read(key, offset, length, chunk_size)

    def _read(self, key: str, offset: int, length: int | None, chunk_size: int) -> Iterator[bytes]:
        if length == 0:
            self._exists_or_raise(key)
            return
        span = f"bytes={offset}-" if length is None else f"bytes={offset}-{offset + length - 1}"
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key, Range=span)
        except ClientError as error:
            if _code(error) in MISSING:
                raise FileNotFoundError(key) from None
            if _code(error) == "InvalidRange":
                return
            raise
        body = answer["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def _exists_or_raise(self, key: str) -> None:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in MISSING:
                raise FileNotFoundError(key) from None
            raise

    def delete(self, digest: str) -> bool:
        if self.stat(digest) is None:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self.blob_key(digest))
        return True

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            yield from page.get("Contents", [])

    def list_blobs(self) -> Iterator[BlobInfo]:
        for entry in self._objects(f"{self.prefix}blobs/sha256/"):
            name = entry["Key"].rsplit("/", 1)[-1]
            digest = f"sha256.{name}"
            if is_digest(digest):
                yield BlobInfo(digest, entry["Size"], _naive_utc(entry["LastModified"]))

    def multipart_uploads(self) -> Iterator[dict[str, Any]]:
        """Every S3 multipart upload in progress under the prefix."""
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            yield from page.get("Uploads", [])

    def list_uploads(self) -> Iterator[UploadInfo]:
        """Every upload's marker, aged by its last change (an assembly's marker changes with each part).

        A process that dies between starting an S3 multipart upload and writing its marker (a few
        milliseconds) leaves a multipart upload no marker names; a bucket lifecycle rule that aborts
        incomplete multipart uploads after a day clears those.
        """
        for entry in self._objects(f"{self.prefix}uploads/"):
            name = entry["Key"].rsplit("/", 1)[-1]
            if name.endswith(".json") and UPLOAD_ID_RE.fullmatch(name[: -len(".json")]):
                try:
                    marker, _ = self.get_marker(name[: -len(".json")])
                except InvalidInput:
                    continue
                yield UploadInfo(name[: -len(".json")], int(marker.get("size", 0)), _naive_utc(entry["LastModified"]))

    def discard_upload(self, upload_id: str) -> bool:
        self.marker_key(upload_id)
        try:
            marker, _ = self.get_marker(upload_id)
        except InvalidInput:
            return False
        self.abort_multipart(marker["key"], marker["mpu"])
        if marker["key"] == self.staging_key(upload_id):
            self.client.delete_object(Bucket=self.bucket, Key=marker["key"])
        self.delete_marker(upload_id)
        return True

    def start_assembly(self, upload_id: str, size: int, digest: str | None = None) -> None:
        marker_key = self.marker_key(upload_id)
        if size > MAX_PARTS * self.part_size:
            raise InvalidInput(f"an upload to this store may be at most {MAX_PARTS * self.part_size} bytes")
        key = self.blob_key(digest) if digest is not None and is_digest(digest) else self.staging_key(upload_id)
        mpu_id = self.create_multipart(key)
        marker = {
            "key": key,
            "mpu": mpu_id,
            "size": size,
            "received": 0,
            "hash": base64.b64encode(ResumableSHA256().state()).decode(),
            "parts": [],
        }
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=marker_key, Body=json.dumps(marker).encode(), IfNoneMatch="*"
            )
        except ClientError as error:
            self.abort_multipart(key, mpu_id)
            if _code(error) in {"PreconditionFailed", "412"}:
                raise Conflict(f"upload {upload_id!r} is already in progress") from None
            raise

    def part_writer(self, upload_id: str, offset: int, length: int) -> S3PartWriter:
        """A writer for the bytes at ``offset``; whether the upload exists (and ends there) is checked by
        its first write, on a worker thread, since finding out needs the bucket."""
        self.marker_key(upload_id)
        with self._writers_lock:
            self._open_writers[upload_id] = self._open_writers.get(upload_id, 0) + 1
        return S3PartWriter(self, upload_id, offset, length)

    def writer_closed(self, upload_id: str) -> None:
        with self._writers_lock:
            left = self._open_writers.pop(upload_id, 1) - 1
            if left:
                self._open_writers[upload_id] = left

    def read_assembly(
        self, upload_id: str, offset: int, length: int, chunk_size: int = VERIFY_CHUNK
    ) -> Iterator[bytes]:
        """S3 cannot read the parts of an unfinished multipart upload; this store never needs to, since
        its parts carry the whole file's hash (``commit_assembly``)."""
        raise Conflict("the bytes of an unfinished S3 upload cannot be read back")

    def commit_assembly(
        self, upload_id: str, expected_digest: str, size: int, prefix: PrefixHash | None = None
    ) -> BlobInfo:
        """Verify the hash the parts carried in the marker (no byte is read back; ``prefix``, a running
        hash of this process, is not needed) and publish the upload."""
        marker, _ = self.get_marker(upload_id)
        try:
            if marker["size"] != size or marker["received"] != size:
                raise SizeMismatch(f"{marker['received']} of the upload's {size} bytes have arrived")
            actual = "sha256." + ResumableSHA256.from_state(base64.b64decode(marker["hash"])).hexdigest()
            if actual != expected_digest:
                raise DigestMismatch(f"the assembled upload's digest is {actual}, not {expected_digest}")
        except (DigestMismatch, SizeMismatch):
            self.discard_upload(upload_id)
            raise
        return self._publish_assembly(upload_id, expected_digest, size)

    def _publish_assembly(self, upload_id: str, digest: str, size: int) -> BlobInfo:
        with self._writers_lock:
            if self._open_writers.get(upload_id):
                raise Conflict("parts of this upload are still being written")
        marker, _ = self.get_marker(upload_id)
        parts = marker["parts"] or self._empty_part(marker)
        try:
            self.complete_multipart(marker["key"], marker["mpu"], parts)
        except ClientError as error:
            self.discard_upload(upload_id)
            if _code(error) in {"InvalidPart", "InvalidPartOrder"}:
                raise Conflict("a part of this upload was sent again while it was stored; it is discarded") from None
            raise
        except BaseException:
            self.discard_upload(upload_id)
            raise
        if marker["key"] != self.blob_key(digest):
            self.copy_into_place(marker["key"], digest)
            self.client.delete_object(Bucket=self.bucket, Key=marker["key"])
        self.delete_marker(upload_id)
        info = self.stat(digest)
        if info is None:
            raise RuntimeError(f"{digest} vanished from the bucket as it was stored")
        return info

    def _empty_part(self, marker: dict[str, Any]) -> list[dict[str, Any]]:
        answer = self.client.upload_part(
            Bucket=self.bucket, Key=marker["key"], UploadId=marker["mpu"], PartNumber=1, Body=b""
        )
        return [{"PartNumber": 1, "ETag": answer["ETag"]}]

    def redirect_url(self, digest: str, expires_in: int, filename: str | None = None) -> str | None:
        if not self.redirect_downloads:
            return None
        params = {"Bucket": self.bucket, "Key": self.blob_key(digest)}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)

