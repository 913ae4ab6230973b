"""Library-protocol transfer benchmark: the real apptainer library client's push and pull against baselines.

``bench/transfer.py`` measures the native API with curl; this one measures what ``apptainer push/pull library://``
does, by driving the real Go library client (``tests/go/src/sregtest/libclient``): a v2 multipart upload above
64 MiB, and a pull that follows a 303 to a signed URL and fetches it in concurrent ranged GETs.

Every figure is compared with a baseline measured in the same run on the same filesystem, because the disks of
shared machines are noisy: the push with ``dd conv=fsync`` (the registry fsyncs before publishing), the pull with
nginx ``sendfile`` serving the very blob the registry stored. The Go client cannot pull from nginx (it needs the
library API in front), so a plain ranged downloader written here fetches from both nginx and the registry's signed
URL with the same part size and concurrency; the real client's pull is timed beside it. The real client's
checksum passes are timed apart from its transfers (from its ``/proc/PID/io`` counters), so that client hashing
is not mistaken for server slowness. The push's floor is what the client cannot avoid: its own hash pass over the
file plus writing the file once (``dd``); the registry hashes parts as they stream and publishes by rename, so the
push should come within a few percent of it. The server's peak RSS is sampled throughout.

The script reports; it does not judge: a missed target prints MISS, but only a failed transfer (or a wrong digest)
makes it exit non-zero.

    python bench/library_transfer.py [--size-mib 1024] [--concurrency 3] [--part-mib 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

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
    stop,
    stored_blob_path,
    verdict,
    warm,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.gotools import build_go_program, make_sif  # noqa: E402

READ_BUFFER = 256 << 10
PROBE_LAST = 1024
USER = "bencher"
PUSH_REF = f"{USER}/bench/sif"
PULL_REF = f"{PUSH_REF}:latest"
ARCH = "amd64"
HTTP_TIMEOUT = 120.0
IO_INTERVAL = 0.01
PUSH_TARGET = 0.8
FLOOR_TARGET = 0.95
PULL_TARGET = 0.5
RSS_TARGET_MB = 200.0


@dataclass
class Watched:
    """A timed client run, with the moments its I/O counters crossed chosen thresholds."""

    seconds: float
    marks: dict[str, float]


@dataclass
class Figures:
    size: int
    dd: list[float] = field(default_factory=list)
    push: Watched | None = None
    push_cpu: float = 0.0
    nginx: list[float] = field(default_factory=list)
    registry: list[float] = field(default_factory=list)
    registry_cpu: list[float] = field(default_factory=list)
    client: list[Watched] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    peak_rss: int = 0
    hwm_rss: int | None = None
    load: list[float] = field(default_factory=list)

    def rate(self, seconds: float) -> float:
        return self.size / (1 << 20) / seconds


@dataclass(frozen=True)
class Tools:
    libclient: Path
    mksif: Path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="Payload size of the test SIF (default 1024).")
    parser.add_argument("--concurrency", type=int, default=3, help="Pull concurrency (apptainer's default, 3).")
    parser.add_argument("--part-mib", type=int, default=5, help="Pull part size in MiB (apptainer's default, 5).")
    parser.add_argument("--runs", type=int, default=3, help="Pulls of each kind, interleaved (default 3).")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder (printed at the end).")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path.cwd(),
        help="Where to make the temporary work folder; tools, image and registry data all live there (default: cwd).",
    )
    return parser.parse_args(argv)


def file_digest(path: Path) -> str:
    """``sha256.<hex>``, the form the library API uses for an image's hash."""
    hasher = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(BLOCK):
            hasher.update(block)
    return "sha256." + hasher.hexdigest()


def build_tools(out_dir: Path) -> Tools:
    return Tools(build_go_program("libclient", out_dir), build_go_program("mksif", out_dir))


def make_image(tools: Tools, path: Path, payload: int) -> str:
    """Write a real SIF with a ``payload``-byte partition, fsynced so no dirty page skews the first baseline."""
    make_sif(tools.mksif, path, arch=ARCH, size=payload, seed=1)
    with path.open("rb") as image:
        os.fsync(image.fileno())
    return file_digest(path)


def proc_io(pid: int) -> dict[str, int] | None:
    """The ``/proc/PID/io`` counters (``rchar``, ``wchar``, ...), or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/io") as counters:
            return {name: int(value) for name, value in (line.split(": ") for line in counters)}
    except (FileNotFoundError, ProcessLookupError):
        return None


def run_watched(
    command: Sequence[str], env: dict[str, str], log: Path, thresholds: dict[str, tuple[str, int]]
) -> Watched:
    """Run a client to completion, noting when each ``/proc/PID/io`` counter first reaches its threshold.

    ``thresholds`` maps a mark's name to ``(counter, bytes)``; a mark never reached is left out.
    """
    marks: dict[str, float] = {}
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        while process.poll() is None:
            counters = proc_io(process.pid) or {}
            now = time.perf_counter() - started
            for name, (counter, limit) in thresholds.items():
                if name not in marks and counters.get(counter, 0) >= limit:
                    marks[name] = now
            time.sleep(IO_INTERVAL)
        seconds = time.perf_counter() - started
    finally:
        stop(process)
    if process.returncode:
        raise BenchFailure(f"{' '.join(command[:2])} failed (exit {process.returncode}): {log.read_text().strip()}")
    return Watched(seconds, marks)


def connect(url: str) -> tuple[http.client.HTTPConnection, str]:
    """A connection to the URL's server and the path (with query) to request on it."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise BenchFailure(f"cannot fetch {url}: only plain http URLs are supported")
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=HTTP_TIMEOUT), target


def get_range(conn: http.client.HTTPConnection, target: str, first: int, last: int) -> http.client.HTTPResponse:
    """Send one ranged GET; the response must be 206 for exactly the bytes asked for."""
    conn.request("GET", target, headers={"Range": f"bytes={first}-{last}"})
    response = conn.getresponse()
    content_range = response.getheader("Content-Range", "")
    if response.status != 206 or not content_range.startswith(f"bytes {first}-{last}/"):
        raise BenchFailure(f"GET {target} bytes={first}-{last}: {response.status}, Content-Range {content_range!r}")
    return response


def probe_size(url: str) -> int:
    """The total size from a small ranged GET, the way the Go client learns it before splitting the download."""
    conn, target = connect(url)
    try:
        response = get_range(conn, target, 0, PROBE_LAST)
        response.read()
        return int(response.getheader("Content-Range", "").rsplit("/", 1)[1])
    finally:
        conn.close()


def copy_part(response: http.client.HTTPResponse, fd: int, position: int, length: int, buffer: memoryview) -> None:
    """Write a part's body at its offset; a body cut short fails the run."""
    while length:
        received = response.readinto(buffer[: min(len(buffer), length)])
        if not received:
            raise BenchFailure(f"a part ended {length} bytes early at offset {position}")
        os.pwrite(fd, buffer[:received], position)
        position += received
        length -= received


def part_worker(url: str, fd: int, parts: queue.SimpleQueue[tuple[int, int]], errors: list[BaseException]) -> None:
    """Fetch parts over one keep-alive connection until none is left (or another worker has failed)."""
    conn, target = connect(url)
    buffer = memoryview(bytearray(READ_BUFFER))
    try:
        while not errors:
            try:
                first, last = parts.get_nowait()
            except queue.Empty:
                return
            response = get_range(conn, target, first, last)
            copy_part(response, fd, first, last - first + 1, buffer)
    except BaseException as error:
        errors.append(error)
    finally:
        conn.close()


def ranged_download(url: str, out: Path, part_size: int, concurrency: int) -> tuple[float, int]:
    """Seconds for the plain downloader to fetch ``url`` into ``out`` in concurrent ranged GETs, and the size.

    ``out`` is overwritten in place rather than truncated: on this kind of VM, freed page-cache pages go back to
    the host, and writing into fresh ones costs more than the transfer itself, at random. The parts tile the file
    and each must be written in full, so after a successful return every byte of ``out`` comes from this run.
    """
    started = time.perf_counter()
    size = probe_size(url)
    parts: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
    for first in range(0, size, part_size):
        parts.put((first, min(first + part_size, size) - 1))
    errors: list[BaseException] = []
    fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, size)
        workers = [threading.Thread(target=part_worker, args=(url, fd, parts, errors)) for _ in range(concurrency)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        os.close(fd)
    seconds = time.perf_counter() - started
    if errors:
        raise BenchFailure(f"ranged download of {url} failed: {errors[0]!r}")
    return seconds, size


def signed_location(base: str, token: str) -> str:
    """The registry's signed download URL: the ``Location`` of the 303 the library client follows."""
    conn, target = connect(f"{base}/v1/imagefile/{PULL_REF}?arch={ARCH}")
    try:
        conn.request("GET", target, headers={"Authorization": f"BEARER {token}"})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    location = response.getheader("Location")
    if response.status != 303 or not location:
        raise BenchFailure(f"GET {target}: expected a 303 with a Location, got {response.status}")
    return location


def check_pulled(path: Path, digest: str) -> None:
    """Fail the run unless a pulled file has the pushed image's sha256."""
    pulled = file_digest(path)
    if pulled != digest:
        raise BenchFailure(f"{path.name} has digest {pulled}, not {digest}")


def client_env(token: str) -> dict[str, str]:
    return {**os.environ, "SREG_TOKEN": token}


def push(tools: Tools, base: str, token: str, image: Path, size: int, log: Path) -> Watched:
    """The real client's push; marks when its checksum pass and its upload have read the whole file."""
    command = [str(tools.libclient), "push", "-url", base, "-file", str(image), "-ref", PUSH_REF]
    command += ["-tags", "latest", "-arch", ARCH]
    return run_watched(command, client_env(token), log, {"checksummed": ("rchar", size), "sent": ("rchar", 2 * size)})


@dataclass(frozen=True)
class Pulls:
    """What every pull round shares."""

    tools: Tools
    server: int
    base: str
    token: str
    nginx_url: str
    digest: str
    size: int
    part_size: int
    concurrency: int
    plain_target: Path
    client_target: Path


def plain_pull(pulls: Pulls, url: str) -> float:
    """Seconds for the plain downloader to fetch ``url``; the bytes are verified afterwards."""
    seconds, size = ranged_download(url, pulls.plain_target, pulls.part_size, pulls.concurrency)
    if size != pulls.size:
        raise BenchFailure(f"{url} announced {size} bytes, not {pulls.size}")
    check_pulled(pulls.plain_target, pulls.digest)
    return seconds


def client_pull(pulls: Pulls) -> Watched:
    """The real client's pull, its hash check included; marks when the last downloaded byte was written.

    The file is dropped after verification, since the client truncates it on every pull anyway.
    """
    out = pulls.client_target
    command = [str(pulls.tools.libclient), "pull", "-url", pulls.base, "-ref", PULL_REF, "-arch", ARCH]
    command += ["-out", str(out), "-concurrency", str(pulls.concurrency), "-partsize", str(pulls.part_size)]
    try:
        watched = run_watched(
            command, client_env(pulls.token), out.with_suffix(".log"), {"downloaded": ("wchar", pulls.size)}
        )
        check_pulled(out, pulls.digest)
        return watched
    finally:
        out.unlink(missing_ok=True)


def pull_round(pulls: Pulls, figures: Figures) -> None:
    """One pull of each kind, back to back, so that a noisy moment hits all three alike."""
    figures.nginx.append(plain_pull(pulls, pulls.nginx_url))
    location = signed_location(pulls.base, pulls.token)
    before = cpu_seconds(pulls.server)
    figures.registry.append(plain_pull(pulls, location))
    figures.registry_cpu.append(cpu_seconds(pulls.server) - before)
    before = cpu_seconds(pulls.server)
    figures.client.append(client_pull(pulls))
    figures.client_cpu.append(cpu_seconds(pulls.server) - before)


def measure_push(tools: Tools, server: int, base: str, token: str, image: Path, figures: Figures, work: Path) -> None:
    print("pushing with the real library client ...", flush=True)
    before = cpu_seconds(server)
    figures.push = push(tools, base, token, image, figures.size, work / "push.log")
    figures.push_cpu = cpu_seconds(server) - before


def stored_blob(data: Path, digest: str, size: int) -> Path:
    """Where the registry stored the pushed image; it must be there whole."""
    blob = stored_blob_path(data, digest)
    if not blob.is_file() or blob.stat().st_size != size:
        raise BenchFailure(f"the pushed image is not stored at {blob}")
    return blob


def measure_pulls(pulls: Pulls, blob: Path, runs: int, figures: Figures) -> None:
    """Interleaved pull rounds from warm caches; the plain target is filled first so no round writes fresh pages."""
    warm(blob)
    shutil.copyfile(blob, pulls.plain_target)
    print(f"pulling ({runs} rounds: nginx, registry, real client) ...", flush=True)
    for _ in range(runs):
        pull_round(pulls, figures)


def run(args: argparse.Namespace, work: Path) -> Figures:
    """The whole benchmark; every process it starts is stopped before it returns or raises."""
    print("building the Go library client and mksif ...", flush=True)
    tools = build_tools(work / "bin")
    image = work / "image.sif"
    print(f"writing a {args.size_mib} MiB SIF to {image} ...", flush=True)
    digest = make_image(tools, image, args.size_mib << 20)
    figures = Figures(image.stat().st_size, load=[os.getloadavg()[0]])
    figures.dd.append(dd_seconds(image, work))
    data = work / "data"
    with registry_server(work, data) as (server, base):
        sampler = RssSampler(server.pid)
        sampler.start()
        try:
            token = robot_token(data, USER)
            measure_push(tools, server.pid, base, token, image, figures, work)
            figures.dd.append(dd_seconds(image, work))
            blob = stored_blob(data, digest, figures.size)
            with nginx_server(work, blob) as nginx_url:
                pulls = Pulls(
                    tools=tools,
                    server=server.pid,
                    base=base,
                    token=token,
                    nginx_url=nginx_url,
                    digest=digest,
                    size=figures.size,
                    part_size=args.part_mib << 20,
                    concurrency=args.concurrency,
                    plain_target=work / "plain.pulled",
                    client_target=work / "client.pulled",
                )
                measure_pulls(pulls, blob, args.runs, figures)
            figures.hwm_rss = proc_status(server.pid, "VmHWM")
        finally:
            figures.peak_rss = sampler.stop()
        figures.load.append(os.getloadavg()[0])
        if server.poll() is not None:
            raise BenchFailure(f"the registry exited with {server.returncode}; see {work / 'registry.log'}")
    return figures


def push_phases(push: Watched) -> str:
    """Where the push's time went: the client hashing the file, sending it, then the server committing it."""
    checksummed = push.marks.get("checksummed", 0.0)
    sent = push.marks.get("sent", push.seconds)
    return (
        f"client checksums {checksummed:.1f} s, upload {sent - checksummed:.1f} s, commit {push.seconds - sent:.1f} s"
    )


def cpu_note(samples: Sequence[float]) -> str:
    return f"server CPU {min(samples):.1f}-{max(samples):.1f} s per run"


def row(name: str, rate: float, detail: str) -> None:
    print(f"{name:<36}{rate:>8.0f}   {detail}")


def ratio_row(name: str, value: float, target: float) -> None:
    print(f"{name:<36}{value:>8.2f}   target >= {target}: {verdict(value, target)}")


def report(figures: Figures, args: argparse.Namespace) -> None:
    """Print the rates, the ratios and the memory figure, each against its target."""
    assert figures.push is not None

    def runs(values: Sequence[float]) -> str:
        return ", ".join(f"{figures.rate(s):.0f}" for s in values)

    downloads = [w.marks.get("downloaded", w.seconds) for w in figures.client]
    dd = figures.rate(min(figures.dd))
    pushed = figures.rate(figures.push.seconds)
    server_push = figures.rate(figures.push.seconds - figures.push.marks.get("checksummed", 0.0))
    floor_seconds = figures.push.marks.get("checksummed", 0.0) + min(figures.dd)
    nginx = figures.rate(min(figures.nginx))
    registry = figures.rate(min(figures.registry))
    client = figures.rate(min(w.seconds for w in figures.client))
    client_download = figures.rate(min(downloads))
    peak_mb = figures.peak_rss / 1e6
    print(f"\n{figures.size / (1 << 20):.0f} MiB SIF; pulls: {args.concurrency} workers of {args.part_mib} MiB parts")
    print(f"(the Go client starts concurrency + 1 = {args.concurrency + 1} workers)\n")
    print(f"{'measure':<36}{'MiB/s':>8}   runs (MiB/s) / detail")
    row("dd conv=fsync (best)", dd, f"before, after: {runs(figures.dd)}")
    row("real client push", pushed, f"{push_phases(figures.push)}; server CPU {figures.push_cpu:.1f} s")
    row("nginx, plain ranged (best)", nginx, runs(figures.nginx))
    row("registry, plain ranged (best)", registry, f"{runs(figures.registry)}; {cpu_note(figures.registry_cpu)}")
    row("registry, real client pull (best)", client, f"{runs([w.seconds for w in figures.client])}; with hash check")
    row("  its download phase (best)", client_download, f"{runs(downloads)}; {cpu_note(figures.client_cpu)}")
    print()
    ratio_row("push / dd", pushed / dd, PUSH_TARGET)
    ratio_row("push / floor (client hash pass + dd)", floor_seconds / figures.push.seconds, FLOOR_TARGET)
    ratio_row("  without client checksums / dd", server_push / dd, PUSH_TARGET)
    ratio_row("registry pull / nginx (plain client)", registry / nginx, PULL_TARGET)
    ratio_row("real client pull / nginx", client / nginx, PULL_TARGET)
    ratio_row("  download phase / nginx", client_download / nginx, PULL_TARGET)
    hwm = f" (VmHWM {figures.hwm_rss / 1e6:.1f} MB)" if figures.hwm_rss else ""
    print(
        f"{'server peak RSS (MB)':<36}{peak_mb:>8.1f}   target < {RSS_TARGET_MB:.0f}: "
        f"{verdict(peak_mb, RSS_TARGET_MB, higher_is_better=False)}{hwm}"
    )
    before, after = figures.load
    busy = "other work skews these figures" if max(before, after) >= 1 else "a quiet machine"
    print(f"\nload average (1 min) {before:.2f} before, {after:.2f} after: on {os.cpu_count()} cores, {busy}")


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so that the finally blocks stop the servers and clients we started."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    return in_work_dir(
        args.work_dir,
        "bench-library-",
        args.keep,
        lambda work: report(run(args, work), args),
        (BenchFailure, OSError, http.client.HTTPException),
    )


if __name__ == "__main__":
    sys.exit(main())
