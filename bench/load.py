"""Load benchmark: how long ``GET /version`` takes while a mixed load runs, against the same request on the same
idle server (the baseline, measured first in the same run).

The real ``sregistry-jupyter serve`` runs as users run it, with its default limits on; the loader (a robot
user) and the probe's address (127.0.0.2) are exempt, as CI robots and monitoring would be. The mix is
``loadmix.py``'s: native pushes and pulls, library pulls through the 303 redirect, listings, searches and
token checks, every answer checked. The load generator is this process and the server another, so the figures
include no contention between them but the machine's own. Only errors make the run fail; the ratio is reported.
The target (p99 under 50 ms) is the one set for 8 pushers and 32 pullers.

The server's CPU per MiB moved, and the time its event-loop thread spent running and spent runnable but waiting
for a CPU, are printed too: a loop that waits longer than it runs is held up by the machine (this loader
included), not by its own work, and the CPU figures compare runs that the machine's load makes incomparable.

    python bench/load.py [--seconds 30] [--image-mib 4] [--pushers 2] [--pullers 2] [--browsers 2] [--keep]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from common import (
    BenchFailure,
    RssSampler,
    SchedTimes,
    cpu_seconds,
    in_work_dir,
    registry_server,
    robot_token,
    tail,
    verdict,
)
from loadmix import Mix, Outcome, run

USER = "bench-robot"
PROBE_ADDRESS = "127.0.0.2"
IDLE_SECONDS = 5.0
P99_TARGET = 0.05


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="Seconds of load (default 30).")
    parser.add_argument("--image-mib", type=int, default=4, help="Size of each pushed image (default 4).")
    parser.add_argument("--pushers", type=int, default=2, help="Concurrent native pushers (default 2).")
    parser.add_argument("--pullers", type=int, default=2, help="Concurrent native pullers (default 2).")
    parser.add_argument("--library-pullers", type=int, default=2, help="Concurrent library pullers (default 2).")
    parser.add_argument("--browsers", type=int, default=2, help="Concurrent listers and searchers (default 2).")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder (printed at the end).")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path.cwd(),
        help="Where to make the temporary work folder; the registry's data lives there too (default: cwd).",
    )
    return parser.parse_args(argv)


def bench(work: Path, args: argparse.Namespace) -> None:
    data = work / "data"
    options = (
        f"--RegistryApp.limit_exempt_users={USER}",
        f"--RegistryApp.limit_exempt_networks={PROBE_ADDRESS}/32",
    )
    with registry_server(work, data, *options) as (server, base):
        mix = Mix(
            base,
            robot_token(data, USER),
            image_size=args.image_mib << 20,
            pushers=args.pushers,
            pullers=args.pullers,
            library_pullers=args.library_pullers,
            browsers=args.browsers,
            probe_address=PROBE_ADDRESS,
        )
        mix.seed()
        idle = run(mix, IDLE_SECONDS, load=False)
        sampler = RssSampler(server.pid)
        sampler.start()
        loop_before, cpu_before = SchedTimes.of(server.pid), cpu_seconds(server.pid)
        try:
            loaded = run(mix, args.seconds)
        finally:
            peak = sampler.stop()
        loop_after, cpu_after = SchedTimes.of(server.pid), cpu_seconds(server.pid)
        if server.poll() is not None:
            raise BenchFailure(f"the registry exited with {server.returncode}:\n{tail(work / 'registry.log')}")
    for outcome in (idle, loaded):
        if outcome.errors:
            shown = "\n  ".join(outcome.errors[:10])
            raise BenchFailure(f"{len(outcome.errors)} unexpected answers, the first:\n  {shown}")
    loop = loop_after - loop_before if loop_before and loop_after else None
    report(idle, loaded, args.seconds, peak)
    report_cpu(loaded, args.seconds, cpu_after - cpu_before, loop)


def report(idle: Outcome, loaded: Outcome, seconds: float, peak_rss: int) -> None:
    base, busy = idle.version, loaded.version
    print()
    print(f"{'GET /version':<24}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'samples':>10}")
    for label, figures in (("idle (baseline)", base), ("under load", busy)):
        print(
            f"{label:<24}{figures.p50 * 1000:>10.1f}{figures.p99 * 1000:>10.1f}"
            f"{max(figures.samples) * 1000:>10.1f}{len(figures.samples):>10}"
        )
    print(f"{'under load / idle':<24}{busy.p50 / base.p50:>10.1f}{busy.p99 / base.p99:>10.1f}")
    met = verdict(busy.p99, P99_TARGET, higher_is_better=False)
    print(f"\np99 under load {busy.p99 * 1000:.1f} ms, target < {P99_TARGET * 1000:.0f} ms: {met}")
    total = sum(loaded.answers.values())
    print(
        f"load: {total} requests in {seconds:.0f} s ({total / seconds:.0f}/s), "
        f"{loaded.bytes_moved / (1 << 20) / seconds:.0f} MiB/s moved; server peak RSS {peak_rss / 1e6:.0f} MB"
    )
    print("  " + ", ".join(f"{kind} {count}" for kind, count in sorted(loaded.answers.items())))
    print(f"load average (1 min) {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


def report_cpu(loaded: Outcome, seconds: float, cpu: float, loop: SchedTimes | None) -> None:
    """Where the server's time went: its CPU per MiB moved, and whether its event loop ran or waited for a CPU."""
    moved = loaded.bytes_moved / (1 << 20)
    print(f"server CPU {cpu / seconds:.2f} cores, {cpu * 1000 / max(moved, 1):.1f} ms per MiB moved")
    if loop is not None:
        print(
            f"event-loop thread: running {loop.running / seconds:.0%} of the time "
            f"({loop.running * 1000 / max(moved, 1):.1f} ms per MiB), "
            f"waiting for a CPU {loop.waiting / seconds:.0%}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return in_work_dir(args.work_dir, "bench-load-", args.keep, lambda work: bench(work, args))


if __name__ == "__main__":
    sys.exit(main())
