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
import contextlib
import grp
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BLOCK = 8 << 20
COLLECTION = "bench"
CONTAINER = "blob"
USER = "bench-robot"
DOWNLOAD_RUNS = 3
START_TIMEOUT = 60.0
SAMPLE_INTERVAL = 0.02
UPLOAD_TARGET = 0.8
DOWNLOAD_TARGET = 0.5
RSS_TARGET_MB = 200.0
NGINX = "/usr/sbin/nginx"
SREGISTRY = str(Path(sys.executable).with_name("sregistry-jupyter"))


class BenchFailure(RuntimeError):
    """A request failed or returned the wrong bytes: the run is invalid, not merely slow."""


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def warm(path: Path) -> None:
    """Read a file once so the timed reads come from the page cache."""
    with path.open("rb") as source:
        while source.read(BLOCK):
            pass


def timed(command: Sequence[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    return time.perf_counter() - started, result


def dd_baseline(source: Path, work: Path) -> float:
    """Seconds for ``dd conv=fsync`` to copy the image on this filesystem: the disk's speed right now."""
    target = work / "dd.out"
    try:
        seconds, result = timed(["dd", f"if={source}", f"of={target}", "bs=4M", "conv=fsync"])
        if result.returncode:
            raise BenchFailure(f"dd failed: {result.stderr.strip()}")
        return seconds
    finally:
        target.unlink(missing_ok=True)


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


def proc_status(pid: int, key: str) -> int | None:
    """A ``/proc/PID/status`` memory figure in bytes, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, to tell a CPU-bound server from a disk-bound one."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler(threading.Thread):
    """Polls a process's resident set size; short-lived spikes matter, hence the 20 ms period."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            rss = proc_status(self.pid, "VmRSS")
            if rss is None:
                return
            self.peak = max(self.peak, rss)
            self._stop_event.wait(SAMPLE_INTERVAL)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def tail(log: Path, lines: int = 5) -> str:
    """The end of a log, for failure messages (the work folder and its logs are removed afterwards)."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def wait_for_line(process: subprocess.Popen[bytes], log: Path, marker: str) -> str:
    """The first line of ``log`` containing ``marker``, waiting for the process to write it."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if marker in line:
                return line
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise BenchFailure(f"{process.args[0]} did not start:\n{tail(log)}")


def wait_for_port(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise BenchFailure(f"nginx did not start:\n{tail(log)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop one process we started, by its PID: politely first, then for good."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def admin(data: Path, *args: str) -> str:
    """Run an admin CLI command against the registry's data folder; its last line of output."""
    result = subprocess.run([SREGISTRY, "admin", *args, "--data-dir", str(data)], capture_output=True, text=True)
    if result.returncode:
        raise BenchFailure(f"admin {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def registry_server(work: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The real registry, started as users start it, on a free port; yields the process and its base URL."""
    log = work / "registry.log"
    command = [SREGISTRY, "serve", "--port", "0", "--ip", "127.0.0.1", "--data-dir", str(work / "data")]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        line = wait_for_line(process, log, "is running at")
        yield process, line.rsplit(" ", 1)[-1].rstrip("/")
    finally:
        stop(process)


def nginx_conf(prefix: Path, root: Path, port: int) -> str:
    """A minimal static server; temp paths point into ``prefix`` so nothing outside it is touched."""
    user = ""
    if os.geteuid() == 0:
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    temps = "\n".join(
        f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}
worker_processes 1;
daemon off;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"};
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
{temps}
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


@contextlib.contextmanager
def nginx_server(work: Path, blob: Path) -> Iterator[str]:
    """nginx serving the registry's own blob file; yields its URL."""
    prefix = work / "nginx"
    prefix.mkdir()
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, blob.parent, port))
    log = prefix / "error.log"
    command = [NGINX, "-c", str(conf), "-p", str(prefix), "-e", str(log)]
    with (prefix / "stderr.log").open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(process, port, log)
        yield f"http://127.0.0.1:{port}/{blob.name}"
    finally:
        stop(process)


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
    figures.dd_seconds.append(dd_baseline(image, work))
    data = work / "data"
    with registry_server(work) as (server, base):
        sampler = RssSampler(server.pid)
        sampler.start()
        try:
            admin(data, "create-user", USER, "--robot")
            token = admin(data, "create-token", USER, "--scope", "write")
            images = f"{base}/api/v1/collections/{COLLECTION}/containers/{CONTAINER}/images"
            auth = [f"Authorization: Bearer {token}"]
            before = cpu_seconds(server.pid)
            figures.upload_seconds = upload(f"{images}?digest={digest}&tag=latest", image, token, work / "upload.json")
            figures.upload_cpu = cpu_seconds(server.pid) - before
            figures.dd_seconds.append(dd_baseline(image, work))
            blob = data / "storage" / "blobs" / "sha256" / digest[7:9] / digest[7:]
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


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    met = value >= target if higher_is_better else value < target
    return "PASS" if met else "MISS"


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
    work = Path(tempfile.mkdtemp(prefix="bench-transfer-", dir=args.work_dir)).resolve()
    try:
        report(run(work, args.size_mib << 20))
    except BenchFailure as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
