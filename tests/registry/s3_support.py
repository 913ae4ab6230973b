"""An S3-compatible server for the tests: moto's, in this process on a free loopback port.

In-process, so that a test can reach below the S3 API where S3 itself offers no way (making an object
look old, as time would); everything the registry does goes through the HTTP endpoint.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer

from sregistry_jupyter.registry.orm import utcnow
from sregistry_jupyter.registry.storage.s3 import S3BlobStore
from tests.conftest import free_port, terminate, wait_for

CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server that lives for the whole test session."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_process_endpoint() -> Iterator[str]:
    """A moto S3 server in a process of its own, for tests that measure this process's memory (moto keeps
    objects in memory) or want the registry and the store on separate cores."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _answers(endpoint), 30), "moto_server did not start"
        yield endpoint
    finally:
        terminate(process, 10)


def _answers(endpoint: str) -> bool:
    try:
        s3_client(endpoint).list_buckets()
    except Exception:
        return False
    return True


def new_bucket(endpoint: str) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def empty_bucket(endpoint: str, name: str) -> None:
    client = s3_client(endpoint)
    for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for entry in client.list_objects_v2(Bucket=name).get("Contents", []):
        client.delete_object(Bucket=name, Key=entry["Key"])
    client.delete_bucket(Bucket=name)


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["access_key_id"],
        aws_secret_access_key=CREDENTIALS["secret_access_key"],
        region_name=CREDENTIALS["region_name"],
    )


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> Iterator[str]:
    """A new, empty bucket; removed with whatever is in it afterwards."""
    name = new_bucket(moto_endpoint)
    try:
        yield name
    finally:
        empty_bucket(moto_endpoint, name)


def make_s3_store(endpoint: str, bucket: str, **traits: Any) -> S3BlobStore:
    return S3BlobStore(endpoint_url=endpoint, bucket=bucket, **CREDENTIALS, **traits)


def bucket_contents(store: S3BlobStore) -> dict[str, list[str]]:
    """Everything in the store's bucket: object keys, and the keys of multipart uploads in progress."""
    client = store.client
    objects = [e["Key"] for e in client.list_objects_v2(Bucket=store.bucket).get("Contents", [])]
    uploads = [u["Key"] for u in client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])]
    return {"objects": sorted(objects), "multipart": sorted(uploads)}


def back_date(bucket: str, key: str, age: dt.timedelta) -> None:
    """Make an object look ``age`` old, as if it had been written then."""
    fake_key = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[bucket].keys[key]
    fake_key.last_modified = utcnow() - age
