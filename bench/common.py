"""What the transfer benchmarks share: the registry and nginx they start, the process figures they read, and
the work folder they run in.

Both scripts start the real ``sregistry-jupyter`` and a static nginx beside it, sample the server's memory and
CPU from ``/proc``, and stop every process they started by its PID, so these live here once.
"""

from __future__ import annotations

import contextlib
import grp
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

BLOCK = 8 << 20
START_TIMEOUT = 60.0
RSS_INTERVAL = 0.02
NGINX = "/usr/sbin/nginx"
SREGISTRY = str(Path(sys.executable).with_name("sregistry-jupyter"))


class BenchFailure(RuntimeError):
    """A transfer failed or delivered the wrong bytes: the run is invalid, not merely slow."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def warm(path: Path) -> None:
    """Read a file once so that the timed reads come from the page cache, not from the disk."""
    with path.open("rb") as source:
        while source.read(BLOCK):
            pass


def timed(command: Sequence[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    return time.perf_counter() - started, result


def dd_seconds(source: Path, work: Path) -> float:
    """Seconds for ``dd conv=fsync`` to copy the image on this filesystem: the disk's speed right now."""
    target = work / "dd.out"
    try:
        seconds, result = timed(["dd", f"if={source}", f"of={target}", "bs=4M", "conv=fsync"])
        if result.returncode:
            raise BenchFailure(f"dd failed: {result.stderr.strip()}")
        return seconds
    finally:
        target.unlink(missing_ok=True)


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


@dataclass(frozen=True)
class SchedTimes:
    """A thread's time on a CPU and time runnable but waiting for one (``/proc/PID/task/TID/schedstat``), in s.

    The second figure tells a slow event loop from a starved one: a loop that waits for a CPU longer than
    it runs is held up by the machine's other work, not by its own."""

    running: float
    waiting: float

    @classmethod
    def of(cls, pid: int, tid: int | None = None) -> SchedTimes | None:
        """The figures of thread ``tid`` (the main thread, whose id is ``pid``, by default); None without them."""
        try:
            with open(f"/proc/{pid}/task/{tid or pid}/schedstat") as stat:
                running, waiting = (int(field) / 1e9 for field in stat.read().split()[:2])
        except (OSError, ValueError):
            return None
        return cls(running, waiting)

    def __sub__(self, earlier: SchedTimes) -> SchedTimes:
        return SchedTimes(self.running - earlier.running, self.waiting - earlier.waiting)


def rss_reader(pid: int) -> Callable[[], int | None]:
    """Resident set size of ``pid`` in bytes (None once it is gone), through psutil when it is installed."""
    try:
        import psutil
    except ImportError:
        return lambda: proc_status(pid, "VmRSS")
    process = psutil.Process(pid)

    def rss() -> int | None:
        try:
            return process.memory_info().rss
        except psutil.NoSuchProcess:
            return None

    return rss


class RssSampler(threading.Thread):
    """Polls a process's resident set size; short-lived spikes matter, hence the 20 ms period."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.read_rss = rss_reader(pid)
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            rss = self.read_rss()
            if rss is None:
                return
            self.peak = max(self.peak, rss)
            self._stop_event.wait(RSS_INTERVAL)

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


def robot_token(data: Path, user: str) -> str:
    """A write token for a new robot account: robots need no terms of service accepted before they push."""
    admin(data, "create-user", user, "--robot")
    return admin(data, "create-token", user, "--scope", "write")


@contextlib.contextmanager
def registry_server(work: Path, data: Path, *options: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The real registry, started as users start it (with ``options`` such as ``--RegistryApp.x=y``), on a free
    port; yields the process and its base URL."""
    log = work / "registry.log"
    command = [SREGISTRY, "serve", "--port", "0", "--ip", "127.0.0.1", "--data-dir", str(data), *options]
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


def stored_blob_path(data: Path, digest: str) -> Path:
    """Where the registry's file store keeps the blob of ``sha256.<hex>``."""
    return data / "storage" / "blobs" / "sha256" / digest[7:9] / digest[7:]


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    met = value >= target if higher_is_better else value < target
    return "PASS" if met else "MISS"


def in_work_dir(
    parent: Path,
    prefix: str,
    keep: bool,
    bench: Callable[[Path], None],
    failures: tuple[type[BaseException], ...] = (BenchFailure,),
) -> int:
    """Run ``bench`` in a fresh work folder under ``parent``, removed afterwards unless kept; the exit status.

    Only ``failures`` make a failed run (status 1, with the reason on stderr); anything else is a bug and
    propagates.
    """
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=parent)).resolve()
    try:
        bench(work)
    except failures as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0
