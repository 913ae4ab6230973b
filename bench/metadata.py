"""Metadata benchmark: authenticated listings, gets and searches on a registry seeded with many images, against
a Tornado hello-world handler in the same venv, run beside it and driven by the same load generator (wrk).

For each database (SQLite, PostgreSQL) and size (100,000 and 1,000,000 images by default) the registry is
seeded in bulk (``seed.py``), started as users start it (``sregistry-jupyter serve``, default limits counted
but with a budget the load cannot exhaust), and each request is driven at ``--connections`` for ``--seconds``.
Every line prints req/s, p50, p99, the ratio of req/s to hello-world's, and the serving process's CPU time per
request beside hello-world's (which the machine's other load distorts far less than rates and latencies).
Finally two ``serve`` processes sharing one port (``--RegistryApp.reuse_port``) are measured against one, on
PostgreSQL. Any non-2xx answer makes the run fail: a fast error is not a result.

    python bench/metadata.py [--images 100000,1000000] [--databases sqlite,postgresql] [--seconds 10] [--only search]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from common import SREGISTRY, BenchFailure, free_port, in_work_dir, robot_token, stop, wait_for_line
from seed import Seeded, seed
from sqlalchemy import text
from sqlalchemy.engine import make_url

from sregistry_jupyter.registry import db

USER = "bench-reader"
FRESH = "(no-cache)"
PG_ADMIN_URL = os.environ.get("SREGISTRY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
WRK = "/usr/bin/wrk"
RATE_BUDGET = 1_000_000_000
LIST_RATIO, LIST_P99, SEARCH_P99, PROCESSES_RATIO = 0.4, 0.050, 0.100, 1.7
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
HELLO = """
import sys, tornado.ioloop, tornado.web
class Hello(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world")
app = tornado.web.Application([(r"/", Hello)])
app.listen(int(sys.argv[1]), "127.0.0.1")
print("hello is running", flush=True)
tornado.ioloop.IOLoop.current().start()
"""


@dataclass(frozen=True)
class Figures:
    rate: float
    p50: float
    p99: float
    timeouts: int = 0
    cpu: float = 0.0  # seconds of the serving processes' CPU per request


def cpu_seconds(pids: Sequence[int]) -> float:
    """The user and system CPU time the processes have used so far (``/proc/PID/stat``, fields 14 and 15)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="100000,1000000", help="Sizes to seed, comma-separated.")
    parser.add_argument("--databases", default="sqlite,postgresql", help="sqlite, postgresql or both.")
    parser.add_argument("--seconds", type=int, default=10, help="Seconds of load per request (default 10).")
    parser.add_argument("--connections", type=int, default=50, help="Connections for lists and gets (default 50).")
    parser.add_argument("--search-connections", type=int, default=10, help="Connections for searches (default 10).")
    parser.add_argument("--no-processes", action="store_true", help="Skip the two-processes comparison.")
    parser.add_argument("--only", default="", help="Measure only the requests whose name contains this text.")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder (printed at the end).")
    parser.add_argument("--work-dir", type=Path, default=Path.cwd(), help="Where to make the work folder.")
    return parser.parse_args(argv)


def seconds_of(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * UNITS[unit]


def wrk(
    url: str, seconds: int, connections: int, pids: Sequence[int], token: str | None = None, fresh: bool = False
) -> Figures:
    """req/s, p50 and p99 of ``GET url`` under wrk, and the CPU per request of the processes ``pids`` that serve
    it; BenchFailure if any answer was not 2xx. ``fresh`` asks for an answer read from the database, not from
    the catalogue cache."""
    command = [WRK, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    if fresh:
        command += ["-H", "Cache-Control: no-cache"]
    cpu_before = cpu_seconds(pids)
    result = subprocess.run([*command, url], capture_output=True, text=True)
    cpu = cpu_seconds(pids) - cpu_before
    out = result.stdout
    if result.returncode or "Non-2xx" in out or re.search(r"connect [1-9]|read [1-9]|write [1-9]", out):
        raise BenchFailure(f"wrk {url}: errors\n{out}{result.stderr}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = seconds_of(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = seconds_of(re.search(r"\s99%\s+(\S+)", out).group(1))
    timeouts = re.search(r"timeout (\d+)", out)
    served = int(re.search(r"(\d+) requests in", out).group(1))
    return Figures(rate, p50, p99, int(timeouts.group(1)) if timeouts else 0, cpu / max(served, 1))


@contextlib.contextmanager
def started(command: list[str], log: Path, marker: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """Run ``command`` until the context ends, once its log shows ``marker``; yields its PID."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_line(process, log, marker)
        yield process.pid
    finally:
        stop(process)


@contextlib.contextmanager
def hello_world(work: Path) -> Iterator[tuple[str, int]]:
    """The URL and PID of a hello-world server."""
    port = free_port()
    with started([sys.executable, "-c", HELLO, str(port)], work / "hello.log", "hello is running") as pid:
        yield f"http://127.0.0.1:{port}/", pid


@contextlib.contextmanager
def database(kind: str, work: Path) -> Iterator[str]:
    """A URL of an empty database: a SQLite file in ``work`` or a scratch PostgreSQL database, dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{work / 'registry.db'}"
        return
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin_url = make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(PG_ADMIN_URL)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare(work: Path, url: str, images: int) -> tuple[str, Seeded]:
    """Create the registry, a reader's token, and ``images`` images; the token and what was seeded."""
    os.environ["SREGISTRY_DB_URL"] = url
    data = work / "data"
    subprocess.run([SREGISTRY, "init", "--data-dir", str(data)], check=True, capture_output=True)
    token = robot_token(data, USER)
    engine = db.make_engine(url)
    try:
        seeded = seed(engine, images, USER)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            # Seeding updated each collection's usage row once per image (its triggers): vacuum the dead rows
            # away, as autovacuum would soon, so that the run measures the registry rather than the bloat.
            connection.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
    finally:
        engine.dispose()
    return token, seeded


@contextlib.contextmanager
def registries(work: Path, count: int, port: int) -> Iterator[tuple[str, list[int]]]:
    """``count`` serve processes sharing ``port``; yields their URL and PIDs."""
    options = ["--data-dir", str(work / "data"), f"--RegistryApp.rate_limit={RATE_BUDGET}", "--ip", "127.0.0.1"]
    options.append("--RegistryApp.max_connections_per_address=0")  # every wrk connection has one address
    options += ["--port", str(port)] + (["--RegistryApp.reuse_port=True"] if count > 1 else [])
    with contextlib.ExitStack() as stack:
        command = [SREGISTRY, "serve", *options]
        pids = [
            stack.enter_context(started(command, work / f"registry-{number}.log", "is running at"))
            for number in range(count)
        ]
        yield f"http://127.0.0.1:{port}", pids


def line(name: str, figures: Figures, hello: Figures, p99_target: float) -> str:
    ratio = figures.rate / hello.rate
    checks = []
    if p99_target == LIST_P99:
        checks.append(f"ratio {'PASS' if ratio >= LIST_RATIO else 'MISS'} (>= {LIST_RATIO})")
    met = figures.p99 < p99_target and not figures.timeouts and figures.rate > 0
    checks.append(f"p99 {'PASS' if met else 'MISS'} (< {p99_target * 1000:.0f} ms)")
    return (
        f"  {name:<30} {figures.rate:8.0f} req/s  p50 {figures.p50 * 1000:7.1f} ms  p99 {figures.p99 * 1000:7.1f} ms"
        f"  {ratio:6.3f}x hello  CPU {figures.cpu * 1e6:6.0f} us/req ({hello.cpu / figures.cpu:5.3f}x hello's)"
        f"   {', '.join(checks)}"
        + (f"  ({figures.timeouts} timed out)" if figures.timeouts else "")
    )


def requests(seeded: Seeded) -> list[tuple[str, str, float]]:
    """(name, path, p99 target) of each request measured; lists and gets are the ones with a ratio target.
    A name ending in FRESH is sent with ``Cache-Control: no-cache``: read from the database every time."""
    c = f"/api/v1/collections/{seeded.collection}/containers/{seeded.container}"
    return [
        # No database work (the token comes from the credential cache): the fixed cost of a request here.
        ("authenticated /version", "/version", LIST_P99),
        # Repeated answers come from the catalogue cache; the fresh lines measure the database path.
        ("collection list", "/api/v1/collections?per_page=20", LIST_P99),
        ("container get", c, LIST_P99),
        (f"collection list {FRESH}", "/api/v1/collections?per_page=20", LIST_P99),
        (f"container get {FRESH}", c, LIST_P99),
        ("library search (word)", f"/v1/search?value={seeded.word}", SEARCH_P99),
        ("library search (name)", f"/v1/search?value={seeded.container}", SEARCH_P99),
        ("shub search (word)", f"/api/container/search/name/{seeded.word}", SEARCH_P99),
        ("shub search (name)", f"/api/container/search/name/{seeded.container}", SEARCH_P99),
        ("shub label search (word)", f"/api/labels/search/{seeded.word}/value", SEARCH_P99),
        ("shub collection list", "/api/collections", SEARCH_P99),
    ]


def bench_case(work: Path, kind: str, images: int, args: argparse.Namespace, processes: bool) -> None:
    with database(kind, work) as url:
        token, seeded = prepare(work, url, images)
        load = os.getloadavg()[0]
        print(
            f"{kind}, {images:,} images (hello-world beside each request; load {load:.1f} on {os.cpu_count()} cores):"
        )
        with hello_world(work) as (hello_url, hello_pid):
            port = free_port()
            with registries(work, 1, port) as (base, pids):
                for name, path, target in requests(seeded):
                    if args.only not in name:
                        continue
                    connections = args.connections if target == LIST_P99 else args.search_connections
                    hello = wrk(hello_url, args.seconds, connections, [hello_pid])
                    fresh = name.endswith(FRESH)
                    figures = wrk(base + path, args.seconds, connections, pids, token, fresh=fresh)
                    print(line(f"{name} -c{connections}", figures, hello, target), flush=True)
            if processes:
                path = {name: path for name, path, _ in requests(seeded)}["collection list"]
                with registries(work, 1, port) as (base, pids):
                    one = wrk(base + path, args.seconds, args.connections, pids, token)
                with registries(work, 2, port) as (base, pids):
                    two = wrk(base + path, args.seconds, args.connections, pids, token)
                ratio = two.rate / one.rate
                verdict = "PASS" if ratio >= PROCESSES_RATIO else "MISS"
                # Equal CPU per request in both runs means the processes share no bottleneck, so the rate is bound
                # by the cores the machine has left (wrk runs beside them), not by the registry.
                print(
                    f"  two processes vs one (collection list): {two.rate:.0f} vs {one.rate:.0f} req/s, "
                    f"p99 {two.p99 * 1000:.1f} vs {one.p99 * 1000:.1f} ms, CPU {two.cpu * 1e6:.0f} vs "
                    f"{one.cpu * 1e6:.0f} us/req: {ratio:.2f}x  {verdict} (>= {PROCESSES_RATIO})",
                    flush=True,
                )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(WRK).exists():
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    sizes = [int(size) for size in args.images.split(",")]
    kinds = args.databases.split(",")

    def bench(work: Path) -> None:
        for kind in kinds:
            for images in sizes:
                case = work / f"{kind}-{images}"
                case.mkdir()
                processes = not args.no_processes and kind == "postgresql" and images == sizes[0]
                bench_case(case, kind, images, args, processes)

    return in_work_dir(args.work_dir, "bench-metadata-", args.keep, bench)


if __name__ == "__main__":
    sys.exit(main())
