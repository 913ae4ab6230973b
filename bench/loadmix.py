"""A mixed load on a live registry, and a probe that times ``GET /version`` while it runs.

The mix is what a busy registry sees at once: native pushes and pulls of images a few MiB large, library
pulls through the ``303`` redirect to a signed URL (fetched without credentials, as the library client
does), metadata listings and searches on the native, library and shub surfaces, and token checks. Every
answer is checked (status, and the bytes' digest for downloads); anything unexpected is an error, which
a run reports rather than hides. The probe asks ``/version`` every ``PROBE_PERIOD`` seconds on its own
connection: its latency is how long anyone waits for the event loop while the rest goes on.

Used by ``tests/registry/test_load.py`` (short, asserted) and ``bench/load.py`` (longer, against a real
``serve`` process, beside an idle baseline). Only httpx and the standard library, so both can import it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

PROBE_PERIOD = 0.05
ARCH = "amd64"
TIMEOUT = 60.0


def digest_of(data: bytes) -> str:
    return "sha256." + hashlib.sha256(data).hexdigest()


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


@dataclass
class Latencies:
    """The probe's samples, in seconds."""

    samples: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples) if self.samples else 0.0

    @property
    def p99(self) -> float:
        return percentile(self.samples, 0.99)

    def describe(self) -> str:
        return (
            f"{len(self.samples)} samples, p50 {self.p50 * 1000:.1f} ms, p99 {self.p99 * 1000:.1f} ms, "
            f"max {max(self.samples, default=0) * 1000:.1f} ms"
        )


@dataclass
class Outcome:
    """What a run did: answers by kind, unexpected answers, and the probe's latencies."""

    answers: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    version: Latencies = field(default_factory=Latencies)
    bytes_moved: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, kind: str, size: int = 0) -> None:
        with self.lock:
            self.answers[kind] += 1
            self.bytes_moved += size

    def fail(self, kind: str, what: str) -> None:
        with self.lock:
            self.errors.append(f"{kind}: {what}"[:500])


@dataclass(frozen=True)
class Pushed:
    container: str
    tag: str
    digest: str


@dataclass
class Mix:
    """How many of each worker run against ``url``, as the user holding ``token``."""

    url: str
    token: str
    collection: str = "load"
    image_size: int = 2 << 20
    pushers: int = 2
    pullers: int = 1
    library_pullers: int = 1
    browsers: int = 2
    probe_address: str | None = None
    pushed: list[Pushed] = field(default_factory=list)
    pushed_lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, authenticated: bool = True, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if authenticated else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT, **kwargs)

    def images(self) -> str:
        return f"/api/v1/collections/{self.collection}/containers/{{container}}/images"

    def seed(self) -> None:
        """Push one image per pusher before the clock starts, so that pulls have something from the first second."""
        with self.client() as client:
            for index in range(max(1, self.pushers)):
                self.push_one(client, f"seed-{index}", "latest", Outcome())
        if not self.pushed:
            raise RuntimeError("seeding the registry failed")

    def push_one(self, client: httpx.Client, container: str, tag: str, outcome: Outcome) -> None:
        data = os.urandom(self.image_size)
        digest = digest_of(data)
        response = client.post(
            self.images().format(container=container), params={"digest": digest, "tag": tag}, content=data
        )
        if response.status_code != 201 or response.json().get("digest") != digest:
            outcome.fail("push", f"{response.status_code} {response.text}")
            return
        outcome.note("push", len(data))
        with self.pushed_lock:
            self.pushed.append(Pushed(container, tag, digest))

    def pick(self) -> Pushed:
        with self.pushed_lock:
            return random.choice(self.pushed)

    # The workers: each loops until ``stop`` is set.

    def pusher(self, index: int, stop: threading.Event, outcome: Outcome) -> None:
        with self.client() as client:
            for round_ in itertools.count(1):
                if stop.is_set():
                    return
                self.push_one(client, f"pushed-{index}", f"r{round_}", outcome)

    def puller(self, index: int, stop: threading.Event, outcome: Outcome) -> None:
        with self.client() as client:
            while not stop.is_set():
                image = self.pick()
                path = self.images().format(container=image.container) + f"/{image.tag}/file"
                response = client.get(path)
                if response.status_code != 200 or digest_of(response.content) != image.digest:
                    outcome.fail("pull", f"{path}: {response.status_code}")
                    continue
                outcome.note("pull", len(response.content))

    def library_puller(self, index: int, stop: threading.Event, outcome: Outcome) -> None:
        """``GetImage``, the download's ``303``, then the signed URL without credentials: a ranged first
        request (as the concurrent downloader starts) and the rest."""
        with self.client() as client, self.client(authenticated=False) as bare:
            while not stop.is_set():
                image = self.pick()
                ref = f"loader/{self.collection}/{image.container}:{image.tag}"
                found = client.get(f"/v1/images/{ref}", params={"arch": ARCH})
                if found.status_code != 200 or found.json()["data"]["hash"] != image.digest:
                    outcome.fail("library image", f"{ref}: {found.status_code} {found.text}")
                    continue
                redirect = client.get(f"/v1/imagefile/{ref}", params={"arch": ARCH})
                if redirect.status_code != 303:
                    outcome.fail("library redirect", f"{ref}: {redirect.status_code} {redirect.text}")
                    continue
                location = redirect.headers["Location"]
                first = bare.get(location, headers={"Range": "bytes=0-1024"})
                rest = bare.get(location, headers={"Range": "bytes=1025-"})
                if first.status_code != 206 or rest.status_code != 206:
                    outcome.fail("library blob", f"{first.status_code}/{rest.status_code}")
                    continue
                if digest_of(first.content + rest.content) != image.digest:
                    outcome.fail("library blob", f"{ref}: the bytes do not match {image.digest}")
                    continue
                outcome.note("library pull", len(first.content) + len(rest.content))

    def browser(self, index: int, stop: threading.Event, outcome: Outcome) -> None:
        """Listings, searches and token checks, round after round."""
        requests: list[tuple[str, str, dict]] = [
            ("native list", "/api/v1/collections", {"q": self.collection}),
            ("native containers", f"/api/v1/collections/{self.collection}/containers", {}),
            ("library search", "/v1/search", {"value": self.collection}),
            ("shub collections", "/api/collections/", {}),
            ("shub search", f"/api/container/search/collection/{self.collection}/name/pushed", {}),
            ("token status", "/v1/token-status", {}),
            ("native user", "/api/v1/user", {}),
        ]
        with self.client() as client:
            for kind, path, params in itertools.cycle(requests):
                if stop.is_set():
                    return
                response = client.get(path, params=params)
                if response.status_code != 200:
                    outcome.fail(kind, f"{response.status_code} {response.text}")
                    continue
                outcome.note(kind)

    def probe(self, stop: threading.Event, latencies: Latencies, outcome: Outcome) -> None:
        """``GET /version`` every ``PROBE_PERIOD`` seconds on one keep-alive connection, timed."""
        transport = httpx.HTTPTransport(local_address=self.probe_address) if self.probe_address else None
        with httpx.Client(base_url=self.url, timeout=TIMEOUT, transport=transport) as client:
            next_at = time.monotonic()
            while not stop.is_set():
                started = time.monotonic()
                response = client.get("/version")
                took = time.monotonic() - started
                if response.status_code != 200:
                    outcome.fail("version", f"{response.status_code} {response.text}")
                latencies.samples.append(took)
                next_at += PROBE_PERIOD
                stop.wait(max(0.0, next_at - time.monotonic()))


def run(mix: Mix, seconds: float, *, load: bool = True) -> Outcome:
    """Run the workers (unless ``load`` is false: the probe alone, for a baseline) for ``seconds``."""
    outcome = Outcome()
    stop = threading.Event()
    workers: list[Callable[[int, threading.Event, Outcome], None]] = []
    if load:
        workers = (
            [mix.pusher] * mix.pushers
            + [mix.puller] * mix.pullers
            + [mix.library_puller] * mix.library_pullers
            + [mix.browser] * mix.browsers
        )
    threads = [
        threading.Thread(target=guarded, args=(work, index, stop, outcome), daemon=True)
        for index, work in enumerate(workers)
    ]
    threads.append(threading.Thread(target=guarded_probe, args=(mix, stop, outcome), daemon=True))
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(TIMEOUT)
    return outcome


def guarded(
    work: Callable[[int, threading.Event, Outcome], None], index: int, stop: threading.Event, outcome: Outcome
) -> None:
    """Run a worker; a transport failure (reset, timeout) is an error of the run, not a crash of the thread."""
    try:
        work(index, stop, outcome)
    except httpx.HTTPError as error:
        outcome.fail(work.__name__, f"{type(error).__name__}: {error}")


def guarded_probe(mix: Mix, stop: threading.Event, outcome: Outcome) -> None:
    try:
        mix.probe(stop, outcome.version, outcome)
    except httpx.HTTPError as error:
        outcome.fail("version", f"{type(error).__name__}: {error}")
