"""Transfer benchmark: the registry's upload and download speed against baselines run beside them.

Disks on shared machines are noisy, so every figure is compared with a baseline measured in the same run on the
same filesystem: the upload with ``dd conv=fsync`` (the registry also fsyncs before publishing), the download with
nginx ``sendfile`` serving the very blob the registry stored. Clients are plain ``curl`` processes so that the
client's own speed is not what gets measured. The server's peak RSS is sampled throughout, because streaming must
keep memory flat whatever the image size.

The script reports; it does not judge: a missed target prints MISS but only a failed request (or a wrong digest)
makes it exit non-zero.

    python bench/transfer.py [--size-mib 1024] [--keep] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    BLOCK,
    BenchFailure,
    RssSampler,
    cpu_seconds,
    dd_seconds,
    in_work_dir,
    nginx_server,
    proc_status,
    registry_server,
    robot_token,
    stored_blob_path,
    tail,
    timed,
    verdict,
    warm,
)

COLLECTION = "bench"
CONTAINER = "blob"
USER = "bench-robot"
DOWNLOAD_RUNS = 3
UPLOAD_TARGET = 0.8
DOWNLOAD_TARGET = 0.5
RSS_TARGET_MB = 200.0


@dataclass
class Figures:
    size: int
    dd_seconds: list[float] = field(default_factory=list)
    upload_seconds: float = 0.0
    nginx_seconds: list[float] = field(default_factory=list)
    download_seconds: list[float] = field(default_factory=list)
    peak_rss: int = 0
    hwm_rss: int | None = None
    upload_cpu: float = 0.0
    download_cpu: float = 0.0
    load: list[float] = field(default_factory=list)

    def rate(self, seconds: float) -> float:
        return self.size / (1 << 20) / seconds


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="Size of the random test image (default 1024).")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder (printed at the end).")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path.cwd(),
        help="Where to make the temporary work folder; the registry's data lives there too (default: cwd).",
    )
    return parser.parse_args(argv)


def make_image(path: Path, size: int) -> str:
    """Write ``size`` random bytes, fsynced so that no dirty page skews the first baseline; return the digest."""
    hasher = hashlib.sha256()
    with path.open("wb") as out:
        remaining = size
        while remaining:
            block = os.urandom(min(BLOCK, remaining))
            hasher.update(block)
            out.write(block)
            remaining -= len(block)
        out.flush()
        os.fsync(out.fileno())
    return "sha256." + hasher.hexdigest()


def curl_download(url: str, size: int, headers: Sequence[str] = ()) -> float:
    """Seconds for curl to fetch ``url`` to /dev/null; the status and the byte count are checked."""
    command = ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{http_code} %{size_download}"]
    for header in headers:
        command += ["-H", header]
    seconds, result = timed([*command, url])
    if result.returncode or result.stdout.split() != ["200", str(size)]:
        raise BenchFailure(f"GET {url}: curl exit {result.returncode}, {result.stdout!r} {result.stderr.strip()}")
    return seconds


def download_runs(url: str, size: int, headers: Sequence[str] = ()) -> list[float]:
    return [curl_download(url, size, headers) for _ in range(DOWNLOAD_RUNS)]


def digest_of_download(url: str, headers: Sequence[str]) -> str:
    """The sha256 of what ``url`` serves, hashed from curl's stdout without touching the disk."""
    command = ["curl", "-sS", "--fail"]
    for header in headers:
        command += ["-H", header]
    hasher = hashlib.sha256()
    with subprocess.Popen([*command, url], stdout=subprocess.PIPE) as curl:
        assert curl.stdout is not None
        while block := curl.stdout.read(BLOCK):
            hasher.update(block)
    if curl.returncode:
        raise BenchFailure(f"GET {url}: curl exit {curl.returncode}")
    return "sha256." + hasher.hexdigest()


def upload(url: str, image: Path, token: str, answer: Path) -> float:
    """Seconds for curl to POST the image as the raw body; anything but 201 fails the run."""
    command = [
        "curl",
        "-sS",
        "--fail-with-body",
        "-X",
        "POST",
        "-T",
        str(image),
        "-H",
        f"Authorization: Bearer {token}",
        "-H",
        "Content-Type: application/octet-stream",
        "-o",
        str(answer),
        "-w",
        "%{http_code}",
        url,
    ]
    seconds, result = timed(command)
    if result.returncode or result.stdout != "201":
        body = answer.read_text(errors="replace") if answer.exists() else ""
        raise BenchFailure(f"upload: curl exit {result.returncode}, status {result.stdout} {body} {result.stderr}")
    return seconds


def run(work: Path, size: int) -> Figures:
    """The whole benchmark; every process it starts is stopped before it returns or raises."""
    figures = Figures(size, load=[os.getloadavg()[0]])
    image = work / "image.bin"
    print(f"writing {size >> 20} MiB of random bytes to {image} ...", flush=True)
    digest = make_image(image, size)
    warm(image)
    figures.dd_seconds.append(dd_seconds(image, work))
    data = work / "data"
    with registry_server(work, data) as (server, base):
        sampler = RssSampler(server.pid)
        sampler.start()
        try:
            token = robot_token(data, USER)
            images = f"{base}/api/v1/collections/{COLLECTION}/containers/{CONTAINER}/images"
            auth = [f"Authorization: Bearer {token}"]
            before = cpu_seconds(server.pid)
            figures.upload_seconds = upload(f"{images}?digest={digest}&tag=latest", image, token, work / "upload.json")
            figures.upload_cpu = cpu_seconds(server.pid) - before
            figures.dd_seconds.append(dd_seconds(image, work))
            blob = stored_blob_path(data, digest)
            warm(blob)
            with nginx_server(work, blob) as nginx_url:
                figures.nginx_seconds = download_runs(nginx_url, size)
            download_url = f"{images}/latest/file"
            before = cpu_seconds(server.pid)
            figures.download_seconds = download_runs(download_url, size, auth)
            figures.download_cpu = (cpu_seconds(server.pid) - before) / DOWNLOAD_RUNS
            served = digest_of_download(download_url, auth)
            if served != digest:
                raise BenchFailure(f"the registry served {served}, not {digest}")
            figures.hwm_rss = proc_status(server.pid, "VmHWM")
        finally:
            figures.peak_rss = sampler.stop()
        figures.load.append(os.getloadavg()[0])
        if server.poll() is not None:
            raise BenchFailure(f"the registry exited with {server.returncode}:\n{tail(work / 'registry.log')}")
    return figures


def report(figures: Figures) -> None:
    """Print the rates, the two ratios and the memory figure, each against its target."""
    dd = figures.rate(min(figures.dd_seconds))
    up = figures.rate(figures.upload_seconds)
    ngx = figures.rate(min(figures.nginx_seconds))
    down = figures.rate(min(figures.download_seconds))
    peak_mb = figures.peak_rss / 1e6

    def runs(values: list[float]) -> str:
        return ", ".join(f"{figures.rate(s):.0f}" for s in values)

    print()
    print(f"{'measure':<28}{'MiB/s':>10}   runs (MiB/s)")
    print(f"{'dd conv=fsync (best)':<28}{dd:>10.0f}   before, after: {runs(figures.dd_seconds)}")
    print(f"{'registry upload':<28}{up:>10.0f}   server CPU {figures.upload_cpu:.2f} s")
    print(f"{'nginx sendfile (best)':<28}{ngx:>10.0f}   {runs(figures.nginx_seconds)}")
    print(f"{'registry download (best)':<28}{down:>10.0f}   {runs(figures.download_seconds)}", end="")
    print(f"; server CPU {figures.download_cpu:.2f} s per run")
    print()
    print(f"{'upload / dd':<28}{up / dd:>10.2f}   target >= {UPLOAD_TARGET}: {verdict(up / dd, UPLOAD_TARGET)}")
    print(
        f"{'download / nginx':<28}{down / ngx:>10.2f}   target >= {DOWNLOAD_TARGET}: "
        f"{verdict(down / ngx, DOWNLOAD_TARGET)}"
    )
    hwm = f" (VmHWM {figures.hwm_rss / 1e6:.1f} MB)" if figures.hwm_rss else ""
    print(
        f"{'server peak RSS (MB)':<28}{peak_mb:>10.1f}   target < {RSS_TARGET_MB:.0f}: "
        f"{verdict(peak_mb, RSS_TARGET_MB, higher_is_better=False)}{hwm}"
    )
    before, after = figures.load
    print(f"\nload average (1 min) {before:.2f} before, {after:.2f} after: on {os.cpu_count()} cores, ", end="")
    print("other work skews these figures" if max(before, after) >= 1 else "a quiet machine")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return in_work_dir(args.work_dir, "bench-transfer-", args.keep, lambda work: report(run(work, args.size_mib << 20)))


if __name__ == "__main__":
    sys.exit(main())
