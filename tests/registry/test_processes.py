"""Several real ``serve`` processes on one PostgreSQL database and one data folder, sharing nothing but those
and ``SREGISTRY_SECRET_KEY``, under a bounded mixed load sent round-robin across them.

Each step of each flow goes to the next process: a push to one and its pull (and its signed download link)
to others, a library multipart upload whose start, parts and completion each reach a different process, a
token made on one, used on the others and revoked on a third, a browser session signed in on one and
signed out on another, and a rate-limited token spent across all of them. Afterwards (the processes stopped,
so that each has flushed its write-behind bookkeeping) every push is listed, every pull counted once,
and the rate limit's counter holds exactly the requests that were made.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from sregistry_jupyter.registry.bookkeeping import FLUSH_INTERVAL
from sregistry_jupyter.registry.orm import Counter, Event, Image
from tests.conftest import CLI, free_port, pg_database, run_cli, start_process, wait_for
from tests.registry.test_sign_in import hidden_value

SECRET = "several-processes-share-this-secret-key"
RATE_LIMIT = 20
WINDOW_NEEDED = 40.0  # seconds of a minute's window the rate-limited requests may take
SPACING = 0.1  # seconds between rate-limited requests: ten in each flush interval, at most
PASSWORD = "a password for the processes test"
PART = 5 << 10
TIMEOUT = 60


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """The environment every process and command gets (one database, one key) and the one data folder."""
    for url in pg_database():
        env = {"SREGISTRY_DB_URL": url, "SREGISTRY_SECRET_KEY": SECRET}
        data = tmp_path / "data"
        run_cli("init", "--data-dir", str(data), env=env)
        yield env, data


def cli(env: dict[str, str], data: Path, *args: str) -> str:
    return run_cli(*args, "--data-dir", str(data), env=env).stdout.strip().splitlines()[-1]


def elsewhere(url: str, base: str) -> str:
    """``url`` (a signed link one process made) sent to the process at ``base`` instead."""
    parts = urlsplit(url)
    return f"{base}{parts.path}?{parts.query}"


def digest_of(data: bytes) -> str:
    return "sha256." + hashlib.sha256(data).hexdigest()


class Cluster:
    """The processes' URLs, handed out round-robin, and clients that keep one token."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.turns = itertools.cycle(range(len(urls)))

    def next(self) -> str:
        return self.urls[next(self.turns)]

    def after(self, base: str, steps: int = 1) -> str:
        return self.urls[(self.urls.index(base) + steps) % len(self.urls)]


def native_push_and_pulls(cluster: Cluster, token: str, number: int) -> int:
    """Push an image to one process, pull it from every process and through a signed link from another;
    the number of pulls made."""
    auth = {"Authorization": f"Bearer {token}"}
    data = os.urandom(20_000 + number)
    base = cluster.next()
    pushed = httpx.post(
        f"{base}/api/v1/collections/load/containers/c{number}/images",
        params={"digest": digest_of(data), "tag": "latest"},
        content=data,
        headers=auth,
        timeout=TIMEOUT,
    )
    assert pushed.status_code == 201, pushed.text
    for other in cluster.urls:
        got = httpx.get(f"{other}/api/v1/collections/load/containers/c{number}/images/latest/file", headers=auth)
        assert got.status_code == 200 and got.content == data
    redirect = httpx.get(f"{cluster.after(base)}/v1/imagefile/load/c{number}:latest", headers=auth)
    assert redirect.status_code == 303, redirect.text
    linked = httpx.get(elsewhere(redirect.headers["Location"], cluster.after(base, 2)))
    assert linked.status_code == 200 and linked.content == data
    return len(cluster.urls) + 1


def browse(cluster: Cluster, token: str) -> None:
    """Listings and searches on every surface, from the next process."""
    auth = {"Authorization": f"Bearer {token}"}
    base = cluster.next()
    for path in ("/api/v1/collections", "/v1/search?value=c1", "/api/container/search/name/c1", "/api/v1/stats"):
        response = httpx.get(base + path, headers=auth, timeout=TIMEOUT)
        assert response.status_code == 200, (path, response.text)


def multipart_push(cluster: Cluster, token: str) -> bytes:
    """A library multipart upload whose every step reaches another process."""
    auth = {"Authorization": f"Bearer {token}"}
    data = os.urandom(3 * PART + 123)

    def call(method: str, path: str, body: dict) -> dict:
        response = httpx.request(method, cluster.next() + path, json=body, headers=auth, timeout=TIMEOUT)
        assert response.status_code == 200, (path, response.text)
        return response.json()["data"]

    collection = call("POST", "/v1/collections", {"name": "parts", "entity": "ci"})
    container = call("POST", "/v1/containers", {"name": "big", "collection": collection["id"]})
    image = call("POST", "/v1/images", {"hash": digest_of(data), "container": container["id"]})
    started = call("POST", f"/v2/imagefile/{image['id']}/_multipart", {"filesize": len(data)})
    upload, parts = started["uploadID"], started["totalParts"]
    assert parts == 4
    completed = []
    for number in range(1, parts + 1):
        chunk = data[(number - 1) * PART : number * PART]
        body = {"uploadID": upload, "partNumber": number, "partSize": len(chunk)}
        url = call("PUT", f"/v2/imagefile/{image['id']}/_multipart", body)["presignedURL"]
        put = httpx.put(elsewhere(url, cluster.next()), content=chunk, timeout=TIMEOUT)
        assert put.status_code == 200, put.text
        completed.append({"partNumber": number, "token": put.headers["ETag"].strip('"')})
    call("PUT", f"/v2/imagefile/{image['id']}/_multipart_complete", {"uploadID": upload, "completedParts": completed})
    tags = httpx.post(
        f"{cluster.next()}/v1/tags/{container['id']}", json={"Tag": "latest", "ImageID": image["id"]}, headers=auth
    )
    assert tags.status_code == 200, tags.text
    return data


def token_travels(cluster: Cluster, token: str) -> None:
    """A token made on one process works on every process until it is revoked on another: refused at once there,
    and within about a second on the rest (each remembers the tokens it verified, ``credential_cache``)."""
    auth = {"Authorization": f"Bearer {token}"}
    made = httpx.post(f"{cluster.next()}/api/v1/user/tokens", json={"name": "travel", "scope": "read"}, headers=auth)
    assert made.status_code == 201, made.text
    fresh = {"Authorization": f"Bearer {made.json()['token']}"}
    for base in cluster.urls:
        assert httpx.get(f"{base}/api/v1/user", headers=fresh).json()["name"] == "alice"
    revoker = cluster.next()
    revoked = httpx.delete(f"{revoker}/api/v1/user/tokens/{made.json()['id']}", headers=auth)
    assert revoked.status_code == 204
    assert httpx.get(f"{revoker}/api/v1/user", headers=fresh).status_code == 401  # at once where it was revoked
    for base in cluster.urls:  # the others drop the verified token within one bookkeeping interval
        assert wait_for(lambda base=base: httpx.get(f"{base}/api/v1/user", headers=fresh).status_code == 401, 3)


def session_travels(cluster: Cluster) -> None:
    """A browser signed in on one process is signed in on all; signing out on another ends it everywhere."""
    with httpx.Client(follow_redirects=False, timeout=TIMEOUT) as browser:
        first = cluster.next()
        page = browser.get(f"{first}/login")
        form = {"_xsrf": hidden_value(page.text, "_xsrf"), "username": "alice", "password": PASSWORD, "next": "/"}
        assert browser.post(f"{first}/login", data=form).status_code == 303
        for base in cluster.urls:
            assert browser.get(f"{base}/api/v1/user").json()["name"] == "alice"
        cookies = dict(browser.cookies)
        last = cluster.after(first)
        page = browser.get(f"{last}/logout")
        out = browser.post(f"{last}/logout", data={"_xsrf": hidden_value(page.text, "_xsrf")})
        assert out.status_code == 303, out.text
        for base in cluster.urls:  # the old cookie, sent again, is refused: the session ended on the server
            assert httpx.get(f"{base}/api/v1/user", cookies=cookies).status_code == 401


def spend(cluster: Cluster, token: str, requests: int) -> list[int]:
    """Statuses of ``requests`` requests with a rate-limited token, round-robin, a little apart, all in one
    minute's window (a window that ended midway would give the token a second budget)."""
    left = 60 - time.time() % 60
    if left < WINDOW_NEEDED:
        time.sleep(left + 0.2)
    statuses = []
    for _ in range(requests):
        statuses.append(
            httpx.get(f"{cluster.next()}/api/v1/user", headers={"Authorization": f"Bearer {token}"}).status_code
        )
        time.sleep(SPACING)
    return statuses


@pytest.mark.parametrize("processes", [2, 3])
def test_several_processes_share_one_database_and_one_data_folder(shared, processes):
    env, data = shared
    cli(env, data, "admin", "create-user", "alice")
    subprocess.run(
        [*CLI, "admin", "set-password", "alice", "--data-dir", str(data)],
        input=PASSWORD,
        text=True,
        check=True,
        capture_output=True,
        env={**os.environ, **env},
    )
    alice = cli(env, data, "admin", "create-token", "alice", "--scope", "admin")
    cli(env, data, "admin", "create-user", "ci", "--robot")
    robot = cli(env, data, "admin", "create-token", "ci", "--scope", "write")
    cli(env, data, "admin", "create-user", "limited", "--robot")
    limited = cli(env, data, "admin", "create-token", "limited", "--scope", "read")
    options = (
        "--data-dir",
        str(data),
        f"--RegistryApp.rate_limit={RATE_LIMIT}",
        "--RegistryApp.limit_exempt_users=['ci', 'alice']",
        f"--RegistryApp.multipart_part_size={PART}",
    )
    servers = [start_process(*options, env=env) for _ in range(processes)]
    try:
        cluster = Cluster([server.url for server in servers])
        with ThreadPoolExecutor(6) as pool:
            pushes = [pool.submit(native_push_and_pulls, cluster, robot, n) for n in range(12)]
            views = [pool.submit(browse, cluster, robot) for _ in range(12)]
            big = pool.submit(multipart_push, cluster, robot)
            tokens = pool.submit(token_travels, cluster, alice)
            sessions = pool.submit(session_travels, cluster)
            limits = pool.submit(spend, cluster, limited, RATE_LIMIT + 15)
            pulls = sum(future.result() for future in pushes)
            for future in [*views, tokens, sessions]:
                future.result()
            data_pushed = big.result()
            statuses = limits.result()
        for base in cluster.urls:
            listed = httpx.get(
                f"{base}/api/v1/collections/load/containers", headers={"Authorization": f"Bearer {robot}"}
            )
            assert len(listed.json()["items"]) == 12
            pulled = httpx.get(f"{base}/api/v1/collections/parts/containers/big/images/latest/file")
            assert pulled.content == data_pushed
        pulls += len(cluster.urls)
        allowed = statuses.count(200)
        # Each process knows the others' counts as of its last flush (FLUSH_INTERVAL, one second), so the
        # limit holds to within the requests of about one interval (ten here); none beyond are let through.
        assert RATE_LIMIT <= allowed <= RATE_LIMIT + 2 * round(FLUSH_INTERVAL / SPACING), statuses
        assert set(statuses) <= {200, 429} and statuses[-1] == 429
    finally:
        for server in servers:
            assert server.stop() == 0
    engine = create_engine(env["SREGISTRY_DB_URL"])
    try:
        with engine.connect() as connection:
            counted = connection.scalar(select(func.sum(Counter.count)).where(Counter.key.like("rate:token:%")))
            downloads = connection.scalar(select(func.sum(Image.downloads)))
            events = connection.scalar(select(func.count(Event.id)).where(Event.action == "pull"))
    finally:
        engine.dispose()
    assert counted == len(statuses)
    assert downloads == pulls
    assert events == pulls


def test_processes_share_one_port_with_reuse_port(tmp_path):
    """With ``reuse_port`` a second process binds the port the first holds, and either serves it alone."""
    data = str(tmp_path / "data")
    run_cli("init", "--data-dir", data)
    port = str(free_port())
    options = ("--data-dir", data, "--port", port, "--RegistryApp.reuse_port=True")
    first = start_process(*options)
    try:
        refused = run_cli("serve", "--data-dir", data, "--port", port, check=False)
        assert refused.returncode != 0 and "already in use" in refused.stderr + refused.stdout
        second = start_process(*options)
        try:
            assert first.url == second.url
            assert first.stop() == 0
            assert {httpx.get(f"{second.url}/version").status_code for _ in range(10)} == {200}
        finally:
            second.stop()
    finally:
        if first.process.poll() is None:
            first.stop()
