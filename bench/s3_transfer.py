"""S3 transfer benchmark: push and pull of a large image through the registry's S3 store, beside boto3.

The registry runs as users run it (``--RegistryApp.blob_store_class=s3``) against a moto S3 server in a process
of its own on loopback. Each figure is compared with boto3 moving the same file to and from the same server in
the same run (``upload_file`` / ``download_file``, boto3's defaults: 8 MiB parts, 10 threads; and one
``get_object`` stream, which is how the registry reads), so what is measured is what the registry adds over
talking to the object store directly:

- push: curl POSTs the image to the native API; the registry hashes it and streams it into an S3 multipart
  upload, completed once the digest matches;
- pull through the registry: the native API streams the object from S3 (what ``redirect_downloads=False`` does);
- redirected pull: the library API's ``303`` to a presigned URL, then curl fetches it from the store.

moto keeps objects in memory and is slower than a real object store; the ratios are the point, not the rates.
The server's peak RSS is sampled throughout (it must stay flat whatever the image size).

    python bench/s3_transfer.py [--size-mib 512] [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import httpx
from boto3.s3.transfer import TransferConfig
from common import BenchFailure, RssSampler, free_port, in_work_dir, registry_server, robot_token, stop, tail, warm
from transfer import curl_download, digest_of_download, make_image, upload

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
USER, COLLECTION, CONTAINER = "bench-robot", "bench", "s3"


@dataclass
class Figures:
    size: int
    boto_up: list[float] = field(default_factory=list)
    boto_down: list[float] = field(default_factory=list)
    boto_stream: list[float] = field(default_factory=list)
    push: list[float] = field(default_factory=list)
    pull: list[float] = field(default_factory=list)
    redirected: list[float] = field(default_factory=list)
    peak_rss: int = 0

    def rate(self, seconds: float) -> float:
        return self.size / (1 << 20) / seconds


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512, help="Size of the random test image (default 512).")
    parser.add_argument("--runs", type=int, default=2, help="Interleaved runs of each measure (default 2).")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder (printed at the end).")
    parser.add_argument("--work-dir", type=Path, default=Path.cwd(), help="Where to make the work folder.")
    return parser.parse_args(argv)


def start_moto(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = work / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(endpoint, timeout=1)
            return process, endpoint
        except httpx.HTTPError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    stop(process)
    raise BenchFailure(f"moto_server did not start:\n{tail(log)}")


def boto_seconds(client: object, action: str, *args: object) -> float:
    """Seconds for one boto3 managed transfer with its default settings."""
    started = time.perf_counter()
    getattr(client, action)(*args, Config=TransferConfig())
    return time.perf_counter() - started


def boto_stream_seconds(client: object, bucket: str, key: str, size: int) -> float:
    """Seconds for one ``get_object`` read as a single stream, as the registry reads a blob it serves."""
    started = time.perf_counter()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]  # type: ignore[attr-defined]
    received = sum(len(chunk) for chunk in body.iter_chunks(1 << 20))
    if received != size:
        raise BenchFailure(f"get_object delivered {received} of {size} bytes")
    return time.perf_counter() - started


def redirected_pull(base: str, size: int) -> float:
    """Seconds from asking the library API for the image to having every byte of the presigned URL."""
    started = time.perf_counter()
    answer = httpx.get(f"{base}/v1/imagefile/{COLLECTION}/{CONTAINER}:latest?arch=amd64")
    if answer.status_code != 303:
        raise BenchFailure(f"the library download answered {answer.status_code}, not 303")
    curl_download(answer.headers["Location"], size)
    return time.perf_counter() - started


def run(work: Path, size: int, runs: int) -> Figures:
    figures = Figures(size)
    image = work / "image.bin"
    print(f"writing {size >> 20} MiB of random bytes to {image} ...", flush=True)
    digest = make_image(image, size)
    warm(image)
    moto, endpoint = start_moto(work)
    try:
        os.environ.update(CREDENTIALS)
        client = boto3.client("s3", endpoint_url=endpoint)
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        options = ["--RegistryApp.blob_store_class=s3", f"--S3BlobStore.bucket={bucket}"]
        options.append(f"--S3BlobStore.endpoint_url={endpoint}")
        data = work / "data"
        with registry_server(work, data, *options) as (server, base):
            sampler = RssSampler(server.pid)
            sampler.start()
            try:
                token = robot_token(data, USER)
                images = f"{base}/api/v1/collections/{COLLECTION}/containers/{CONTAINER}/images"
                auth = [f"Authorization: Bearer {token}"]
                for n in range(runs):
                    figures.boto_up.append(boto_seconds(client, "upload_file", str(image), bucket, f"direct/{n}"))
                    if n:  # the image again, as a new push (the object store is written again too)
                        gone = httpx.delete(f"{images}/{digest}", headers={"Authorization": f"Bearer {token}"})
                        gone.raise_for_status()
                    push_url = f"{images}?digest={digest}&tag=latest"
                    figures.push.append(upload(push_url, image, token, work / "upload.json"))
                    figures.boto_down.append(
                        boto_seconds(client, "download_file", bucket, f"direct/{n}", str(work / "direct.out"))
                    )
                    figures.boto_stream.append(boto_stream_seconds(client, bucket, f"direct/{n}", size))
                    figures.pull.append(curl_download(f"{images}/latest/file", size, auth))
                    figures.redirected.append(redirected_pull(base, size))
                served = digest_of_download(f"{images}/latest/file", auth)
                if served != digest:
                    raise BenchFailure(f"the registry served {served}, not {digest}")
            finally:
                figures.peak_rss = sampler.stop()
            if server.poll() is not None:
                raise BenchFailure(f"the registry exited with {server.returncode}:\n{tail(work / 'registry.log')}")
    finally:
        stop(moto)
    return figures


def report(figures: Figures) -> None:
    def med(values: list[float]) -> float:
        return figures.rate(statistics.median(values))

    def runs(values: list[float]) -> str:
        return ", ".join(f"{figures.rate(s):.0f}" for s in values)

    rows = [
        ("boto3 upload_file", figures.boto_up),
        ("registry push (native API)", figures.push),
        ("boto3 download_file", figures.boto_down),
        ("boto3 get_object, one stream", figures.boto_stream),
        ("registry pull (streamed)", figures.pull),
        ("library pull (303 to S3)", figures.redirected),
    ]
    print()
    print(f"{'measure (median)':<30}{'MiB/s':>8}   runs (MiB/s)")
    for name, values in rows:
        print(f"{name:<30}{med(values):>8.0f}   {runs(values)}")
    print()
    print(f"{'push / boto3 upload':<30}{med(figures.push) / med(figures.boto_up):>8.2f}")
    print(f"{'streamed pull / boto3 download':<30}{med(figures.pull) / med(figures.boto_down):>8.2f}")
    print(f"{'streamed pull / get_object':<30}{med(figures.pull) / med(figures.boto_stream):>8.2f}")
    print(f"{'303 pull / boto3 download':<30}{med(figures.redirected) / med(figures.boto_down):>8.2f}")
    print(f"{'303 pull / get_object':<30}{med(figures.redirected) / med(figures.boto_stream):>8.2f}")
    print(f"{'server peak RSS (MB)':<30}{figures.peak_rss / 1e6:>8.1f}   for a {figures.size >> 20} MiB image")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return in_work_dir(
        args.work_dir, "bench-s3-", args.keep, lambda work: report(run(work, args.size_mib << 20, args.runs))
    )


if __name__ == "__main__":
    sys.exit(main())
