"""Pages benchmark: how long the collections list, a collection's page, a container's page, the teams list,
a team's page, the staff's audit and users pages and the plots take with 100,000 images in the registry,
against a static file served by the same process (the baseline).

The registry's database is filled by bulk inserts (collections of containers of images, each image tagged,
pushed and pulled once in the audit trail; users in teams), then the real ``sregistry-jupyter serve`` is
started on it and each page is fetched over one keep-alive connection, after a warm-up: the public pages
by a visitor, the others by a staff member signed in through the login page.

The figure is the median time at the client on loopback, which is the server's
time plus a near-constant cost the static file also pays; the ratio of the two is reported beside the target
of 50 ms per page.

    python bench/pages.py [--images 100000] [--requests 50] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from common import SREGISTRY, BenchFailure, admin, in_work_dir, registry_server, verdict
from sqlalchemy import Connection, insert, select

from sregistry_jupyter.registry import db
from sregistry_jupyter.registry.orm import (
    Collection,
    CollectionMember,
    Container,
    Event,
    Image,
    Tag,
    Team,
    TeamMember,
    User,
    utcnow,
)

TARGET_MS = 50.0
CONTAINERS_PER_COLLECTION = 20
IMAGES_PER_CONTAINER = 10
BATCH = 5000
USERS = 2_000
TEAMS = 200
MEMBERS_PER_TEAM = 10
STAFF = "staffer"
PASSWORD = "a long bench password"
XSRF_RE = re.compile(r'name="_xsrf" value="([^"]+)"')
# The benchmark's own requests are not rate limited, as monitoring would not be.
EXEMPT = '--RegistryApp.limit_exempt_networks=["127.0.0.0/8"]'


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000, help="Images in the registry (default 100,000).")
    parser.add_argument("--requests", type=int, default=50, help="Timed requests per page (default 50).")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder (printed at the end).")
    parser.add_argument("--work-dir", type=Path, default=Path.cwd(), help="Where the work folder goes.")
    return parser.parse_args(argv)


def digest(n: int) -> str:
    return "sha256." + hashlib.sha256(str(n).encode()).hexdigest()


def fill(db_url: str, images: int) -> tuple[str, str]:
    """Bulk-insert ``images`` images; returns a collection and a container of it to time."""
    engine = db.make_engine(db_url)
    per_collection = CONTAINERS_PER_COLLECTION * IMAGES_PER_CONTAINER
    collections = max(1, images // per_collection)
    now = utcnow()
    with engine.begin() as conn:
        owner = conn.execute(select(User.id).where(User.name == "bench")).scalar_one()
        conn.execute(
            insert(Collection),
            [
                {"name": f"lab-{c:05d}", "description": "", "private": c % 5 == 0, "created_at": now, "updated_at": now}
                for c in range(collections)
            ],
        )
        ids = dict(conn.execute(select(Collection.name, Collection.id)).all())
        conn.execute(
            insert(CollectionMember), [{"collection_id": i, "user_id": owner, "role": "owner"} for i in ids.values()]
        )
        conn.execute(
            insert(Container),
            [
                {"collection_id": i, "name": f"tool-{k:02d}", "description": "", "created_at": now, "updated_at": now}
                for i in ids.values()
                for k in range(CONTAINERS_PER_COLLECTION)
            ],
        )
        containers = conn.execute(select(Container.id)).scalars().all()
        rows, tags, n = [], [], 0
        for container in containers:
            for _ in range(IMAGES_PER_CONTAINER):
                if n >= images:
                    break
                rows.append(
                    {
                        "container_id": container,
                        "digest": digest(n),
                        "size": 1_000_000 + n,
                        "arch": "amd64",
                        "description": "",
                        "uploaded": True,
                        "signed": False,
                        "downloads": n % 7,
                        "created_at": now,
                        "uploaded_at": now,
                        "sif": {"partitions": [], "deffile": "Bootstrap: docker"},
                    }
                )
                n += 1
            if len(rows) >= BATCH:
                conn.execute(insert(Image), rows)
                rows = []
        if rows:
            conn.execute(insert(Image), rows)
        for image_id, container_id, image_digest in conn.execute(select(Image.id, Image.container_id, Image.digest)):
            tags.append(
                {
                    "container_id": container_id,
                    "image_id": image_id,
                    "name": "v" + image_digest[7:15],
                    "arch": "amd64",
                    "frozen": False,
                    "updated_at": now,
                }
            )
            if len(tags) >= BATCH:
                conn.execute(insert(Tag), tags)
                tags = []
        if tags:
            conn.execute(insert(Tag), tags)
        fill_trail(conn, owner, now)
        fill_people(conn, now)
    engine.dispose()
    return "lab-00001", "tool-03"


def fill_trail(conn: Connection, owner: int, now: dt.datetime) -> None:
    """A push and a pull of every image in the audit trail, spread over the last 30 days."""
    names = (
        select(Image.digest, Image.size, Container.name, Collection.name)
        .select_from(Image)
        .join(Container, Image.container_id == Container.id)
        .join(Collection, Container.collection_id == Collection.id)
    )
    events = []
    for n, (image_digest, size, container, collection) in enumerate(conn.execute(names)):
        for action in ("push", "pull"):
            events.append(
                {
                    "at": now - dt.timedelta(minutes=n % (30 * 24 * 60)),
                    "action": action,
                    "user_id": owner,
                    "username": "bench",
                    "collection": collection,
                    "container": container,
                    "tag": "latest",
                    "digest": image_digest,
                    "size": size,
                    "remote_addr": "127.0.0.1",
                }
            )
        if len(events) >= BATCH:
            conn.execute(insert(Event), events)
            events = []
    if events:
        conn.execute(insert(Event), events)


def fill_people(conn: Connection, now: dt.datetime) -> None:
    """Accounts, and teams of them (the first member of each its owner)."""
    conn.execute(insert(User), [{"name": f"user-{u:05d}", "created_at": now} for u in range(USERS)])
    people = conn.execute(select(User.id).where(User.name.startswith("user-")).order_by(User.id)).scalars().all()
    conn.execute(insert(Team), [{"name": f"team-{t:04d}", "description": "", "created_at": now} for t in range(TEAMS)])
    teams = conn.execute(select(Team.id).order_by(Team.id)).scalars().all()
    conn.execute(
        insert(TeamMember),
        [
            {
                "team_id": team,
                "user_id": people[(t * MEMBERS_PER_TEAM + m) % len(people)],
                "role": "owner" if m == 0 else "member",
            }
            for t, team in enumerate(teams)
            for m in range(MEMBERS_PER_TEAM)
        ],
    )


def signed_in(url: str, data: Path) -> httpx.Client:
    """A client signed in as the staff member through the login page, as a browser would be."""
    admin(data, "create-user", STAFF, "--staff")
    subprocess.run(
        [SREGISTRY, "admin", "set-password", STAFF, "--data-dir", str(data)],
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
    )
    client = httpx.Client(base_url=url, timeout=60)
    found = XSRF_RE.search(client.get("/login").text)
    if found is None:
        raise BenchFailure("the login page has no XSRF field")
    form = {"_xsrf": found.group(1), "next": "/", "username": STAFF, "password": PASSWORD}
    answer = client.post("/login", data=form)
    if answer.status_code not in (200, 302, 303) or client.get("/staff/users").status_code != 200:
        raise BenchFailure(f"signing in as {STAFF} failed: {answer.status_code} {answer.text[:200]}")
    return client


def median_ms(client: httpx.Client, path: str, count: int) -> float:
    for _ in range(5):
        client.get(path)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise BenchFailure(f"GET {path} answered {response.status_code}: {response.text[:200]}")
    return statistics.median(times)


def bench(work: Path, args: argparse.Namespace) -> None:
    data = work / "data"
    subprocess.run([SREGISTRY, "init", "--data-dir", str(data)], check=True, capture_output=True)
    subprocess.run(
        [SREGISTRY, "admin", "create-user", "bench", "--data-dir", str(data)], check=True, capture_output=True
    )
    started = time.perf_counter()
    collection, container = fill(f"sqlite:///{data / 'registry.db'}", args.images)
    print(f"seeded {args.images:,} images in {time.perf_counter() - started:.1f} s")
    with registry_server(work, data, EXEMPT) as (_, url), httpx.Client(base_url=url, timeout=60) as client:
        static = median_ms(client, "/static/registry.css", args.requests)
        print(f"baseline: static file            {static:7.2f} ms")
        pages = {
            "collections list": "/collections",
            "collections, page 10": "/collections?page=10",
            "a collection": f"/collections/{collection}",
            "a container": f"/collections/{collection}/{container}",
            "home": "/",
        }
        worst = 0.0
        for label, path in pages.items():
            ms = median_ms(client, path, args.requests)
            worst = max(worst, ms)
            print(f"{label:<32} {ms:7.2f} ms  ratio {ms / static:6.1f}x static")
        # Sorting by size sums every visible collection's images before the page is cut; reported apart.
        by_size = median_ms(client, "/collections?sort=-size", args.requests)
        print(f"{'collections by size (all summed)':<32} {by_size:7.2f} ms  ratio {by_size / static:6.1f}x static")
        with contextlib.closing(signed_in(url, data)) as staff:
            signed = {
                "teams list": "/teams",
                "a team": "/teams/team-0001",
                "staff: audit trail": "/staff/audit",
                "staff: users": "/staff/users",
                "plots": "/plots",
            }
            for label, path in signed.items():
                ms = median_ms(staff, path, args.requests)
                worst = max(worst, ms)
                print(f"{label + ' (staff)':<32} {ms:7.2f} ms  ratio {ms / static:6.1f}x static")
        print(f"slowest page {worst:.2f} ms (target < {TARGET_MS:.0f} ms): {verdict(worst, TARGET_MS, False)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return in_work_dir(args.work_dir, "pages-bench-", args.keep, lambda work: bench(work, args))


if __name__ == "__main__":
    sys.exit(main())
