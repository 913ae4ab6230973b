"""Request and pull limits: 429 with ``Retry-After`` in each surface's envelope, budgets per token and
per anonymous address, exemptions, counts shared by registry processes on one database, weekly pull
limits through every download path, and the Redis back end (up and down).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis
from sqlalchemy import select
from traitlets import TraitError

from sregistry_jupyter.registry.access import ANONYMOUS
from sregistry_jupyter.registry.app import RegistryApp
from sregistry_jupyter.registry.orm import Counter
from sregistry_jupyter.registry.services.limits import (
    MONDAY,
    WEEK,
    Limiter,
    Limits,
    address_key,
    parse_networks,
    window_end,
)
from tests.conftest import flush, open_context, start_in_thread
from tests.gotools import make_sif
from tests.registry.test_library_client import LibClient
from tests.registry.test_sregistry_cli import Cli, output
from tests.registry.test_transfer import push

REDIS_URL = "redis://127.0.0.1:6379/0"
CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


def steady_clock() -> Callable[[], float]:
    """Real time shifted back to one second into the current minute, so that a test's requests fall in
    one rate window however close to a minute's end it starts."""
    shift = time.time() % 60 - 1
    return lambda: time.time() - shift


@pytest.fixture
def limits() -> Limits:
    return Limits(rate_limit=3, anonymous_rate_limit=2)


@pytest.fixture
def redis_url() -> str:
    return ""


@pytest.fixture
def clock() -> Callable[[], float]:
    return steady_clock()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own, whose keys are removed afterwards."""
    prefix = f"sregtest:{uuid.uuid4().hex}:"
    yield prefix
    if redis_url == REDIS_URL:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def registry_settings(limits: Limits, redis_url: str, redis_prefix: str, clock: Callable[[], float]) -> dict:
    return {"limiter": Limiter(limits, redis_url, redis_prefix, clock=clock)}


def statuses(client: httpx.Client, path: str, times: int) -> list[int]:
    return [client.get(path).status_code for _ in range(times)]


def too_many(response: httpx.Response, longest: int = 60) -> str:
    """Assert a 429 whose ``Retry-After`` is a whole number of seconds within the window; the body."""
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["Retry-After"]) <= longest
    return response.text


def native_refusal(response: httpx.Response, longest: int = 60) -> str:
    too_many(response, longest)
    body = response.json()
    assert set(body) == {"code", "message"} and body["code"] == "TOO_MANY_REQUESTS"
    return body["message"]


def counter_keys(registry) -> list[str]:
    registry.flush()
    with registry.session() as session:
        return sorted(session.scalars(select(Counter.key)))


def test_windows_exemptions_and_networks():
    monday = 1_700_438_400  # 2023-11-20 00:00:00 UTC, a Monday
    assert window_end(monday + 5, WEEK, MONDAY) == monday + WEEK
    assert window_end(monday - 1, WEEK, MONDAY) == monday
    assert window_end(monday + 61, 60) == monday + 120
    limits = Limits(exempt_users=frozenset({"ci"}), exempt_networks=parse_networks(["10.0.0.0/8", "::1"]))
    assert limits.exempt(ANONYMOUS, "10.2.3.4") and limits.exempt(ANONYMOUS, "::1")
    assert not limits.exempt(ANONYMOUS, "11.0.0.1") and not limits.exempt(ANONYMOUS, "")
    assert address_key("2001:db8:1:2:3:4:5:6") == address_key("2001:db8:1:2::9") == "2001:db8:1:2::/64"
    assert (address_key("::ffff:10.1.2.3"), address_key("10.1.2.3"), address_key("")) == ("10.1.2.3", "10.1.2.3", "")
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300/8' is not a network"):
        parse_networks(["10.0.0.300/8"])


def test_settings_come_from_the_application_traits():
    app = RegistryApp()
    assert (app.make_limiter().limits.rate_limit, app.make_limiter().limits.anonymous_rate_limit) == (600, 120)
    app.rate_limit, app.weekly_pull_limit_container = 30, 5
    app.limit_exempt_users, app.limit_exempt_networks = ["ci"], ["192.168.0.0/16"]
    limits = app.make_limiter().limits
    assert (limits.rate_limit, limits.weekly_pull_limit_container, limits.exempt_users) == (30, 5, {"ci"})
    assert [str(n) for n in limits.exempt_networks] == ["192.168.0.0/16"]
    with pytest.raises(TraitError, match="not a network"):
        app.limit_exempt_networks = ["everyone"]


def test_each_token_has_its_own_budget_and_429_says_when_to_retry_in_every_envelope(registry):
    alice = registry.client(registry.add_user("alice", scope="read"))
    bob = registry.client(registry.add_user("bob", scope="read"))

    assert statuses(alice, "/api/v1/user", 3) == [200, 200, 200]
    assert "more than 3 requests a minute with this token" in native_refusal(alice.get("/api/v1/user"))
    library = alice.get("/v1/token-status")
    too_many(library)
    assert library.json()["error"]["code"] == 429 and "3 requests a minute" in library.json()["error"]["message"]
    shub = alice.get("/api/collections")
    too_many(shub)
    assert set(shub.json()) == {"detail"} and "3 requests a minute" in shub.json()["detail"]

    assert statuses(bob, "/api/v1/user", 4) == [200, 200, 200, 429]
    anonymous = registry.client()
    assert statuses(anonymous, "/version", 2) == [200, 200]
    assert "from your address without a token" in too_many(anonymous.get("/version"))


def test_failed_credentials_spend_the_address_budget(registry):
    forged = registry.client("sreg_not-a-real-token")
    assert statuses(forged, "/api/v1/user", 3) == [401, 401, 429]
    assert registry.client().get("/version").status_code == 429
    assert registry.client(registry.add_user("alice", scope="read")).get("/api/v1/user").status_code == 200


@pytest.mark.parametrize("limits", [Limits(rate_limit=1, anonymous_rate_limit=1, exempt_users=frozenset({"ci"}))])
def test_exempt_users_are_never_limited(registry):
    robot = registry.client(registry.add_user("ci", scope="read"))
    alice = registry.client(registry.add_user("alice", scope="read"))
    assert statuses(robot, "/api/v1/user", 6) == [200] * 6
    assert statuses(alice, "/api/v1/user", 2) == [200, 429]


@pytest.mark.parametrize(
    "limits",
    [Limits(rate_limit=1, anonymous_rate_limit=1, exempt_networks=parse_networks(["10.0.0.0/8", "127.0.0.1"]))],
)
def test_exempt_networks_are_never_limited(registry):
    alice = registry.client(registry.add_user("alice", scope="read"))
    assert statuses(alice, "/api/v1/user", 5) == [200] * 5
    assert statuses(registry.client(), "/version", 5) == [200] * 5
    assert counter_keys(registry) == []


def test_registry_processes_on_one_database_share_the_counts(registry, limits, clock, tmp_path):
    second = open_context(registry.db_url, tmp_path / "second", limiter=Limiter(limits, clock=clock))
    url, stop = start_in_thread(second)
    token = registry.add_user("alice", scope="read")
    try:
        with (
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as there,
            httpx.Client(base_url=url) as anonymous_there,
        ):
            here, anonymous_here = registry.client(token), registry.client()

            def get(client: httpx.Client, path: str) -> httpx.Response:
                """A request, then two rounds of both processes' periodic flush (the first writes each one's
                counts, the second brings each the other's)."""
                response = client.get(path)
                for _ in range(2):
                    registry.flush()
                    flush(second)
                return response

            assert [get(c, "/api/v1/user").status_code for c in (here, there, here, there)] == [200, 200, 200, 429]
            assert [get(c, "/version").status_code for c in (anonymous_here, anonymous_there)] == [200, 200]
            too_many(get(anonymous_here, "/version"))
    finally:
        stop()
        second.engine.dispose()


@pytest.mark.parametrize("limits", [Limits(weekly_pull_limit_container=2)])
def test_weekly_pull_limit_per_container_through_native_and_shub_downloads(registry):
    api = registry.client(registry.add_user("alice", scope="write"))
    assert push(api, b"tool bytes", container="tool").status_code == 201
    assert push(api, b"other bytes", container="other").status_code == 201
    tool = "/api/v1/collections/lab/containers/tool/images/latest/file"

    assert [api.head(tool).status_code for _ in range(3)] == [200] * 3
    assert api.get(tool, headers={"Range": "bytes=3-"}).status_code == 206
    assert statuses(api, tool, 2) == [200, 200]
    message = native_refusal(api.get(tool), longest=WEEK)
    assert "container lab/tool has been pulled 2 times this week" in message

    manifest = api.get("/api/container/lab/other:latest").json()
    assert api.get(manifest["image"]).content == b"other bytes"
    assert api.get("/api/v1/collections/lab/containers/other/images/latest/file").status_code == 200
    refused = api.get(manifest["image"])
    too_many(refused, longest=WEEK)
    assert set(refused.json()) == {"detail"} and "lab/other" in refused.json()["detail"]


@pytest.mark.parametrize("limits", [Limits(weekly_pull_limit_collection=2, exempt_users=frozenset({"ci"}))])
def test_weekly_pull_limit_per_collection_through_the_library_client(registry, libclient_bin, mksif, tmp_path):
    lib = LibClient(libclient_bin, registry.url)
    alice, robot = registry.add_user("alice", scope="write"), registry.add_user("ci", scope="read")
    image = make_sif(mksif, tmp_path / "img.sif", size=20_000, seed=9)
    for ref in ("alice/lab/a", "alice/lab/b", "alice/elsewhere/c"):
        lib.push(image, ref, "latest", alice)

    def pull(ref: str, token: str | None = None, command: str = "pull") -> subprocess.CompletedProcess:
        return lib.run(command, "-ref", ref, "-out", str(tmp_path / f"{uuid.uuid4().hex}.sif"), token=token)

    assert [pull(ref).returncode for ref in ("lab/a:latest", "lab/b:latest")] == [0, 0]
    concurrent = pull("lab/a:latest", alice)
    assert concurrent.returncode == 1 and "unexpected HTTP status 429" in concurrent.stderr
    single = pull("lab/b:latest", alice, "pull-single")
    assert single.returncode == 1
    assert "collection 'lab' has been pulled 2 times this week" in single.stderr
    assert pull("elsewhere/c:latest").returncode == 0
    assert pull("lab/b:latest", robot).returncode == 0


@pytest.mark.parametrize("limits", [Limits(rate_limit=100, anonymous_rate_limit=1)])
def test_authenticated_pushes_never_spend_the_anonymous_budget(registry, libclient_bin, mksif, tmp_path):
    token = registry.add_user("alice", scope="write")
    lib = LibClient(libclient_bin, registry.url)
    for seed in (1, 2):
        lib.push(make_sif(mksif, tmp_path / f"{seed}.sif", size=20_000, seed=seed), "alice/lab/demo", f"v{seed}", token)
    cli = Cli(registry.url, "alice", token, tmp_path / "cli")
    pushed = cli("push", "--name", "lab/cli", "--tag", "latest", str(tmp_path / "1.sif"))
    assert pushed.returncode == 0, output(pushed)

    anonymous = registry.client()
    assert statuses(anonymous, "/version", 2) == [200, 429]


@pytest.mark.parametrize("redis_url", [REDIS_URL])
@pytest.mark.parametrize("limits", [Limits(rate_limit=3, weekly_pull_limit_container=1)])
def test_redis_back_end_holds_the_counts(registry, redis_prefix):
    api = registry.client(registry.add_user("alice", scope="write"))
    assert push(api, b"bytes").status_code == 201
    download = "/api/v1/collections/lab/containers/tool/images/latest/file"
    assert statuses(api, download, 3) == [200, 429, 429]

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        keys = {key.removeprefix(redis_prefix).rsplit(":", 1)[0]: key for key in client.scan_iter(f"{redis_prefix}*")}
        assert sorted(keys) == ["pull:container:1", "rate:token:1"]
        assert client.get(keys["rate:token:1"]) == "4"
        assert 0 < client.ttl(keys["rate:token:1"]) <= 120
        assert 0 < client.ttl(keys["pull:container:1"]) <= WEEK + 60
    finally:
        client.close()
    assert counter_keys(registry) == []


@pytest.mark.parametrize("redis_url", [CLOSED_PORT_URL])
@pytest.mark.parametrize("limits", [Limits(rate_limit=3, weekly_pull_limit_container=1)])
def test_while_redis_is_down_limits_are_counted_in_the_database(registry, caplog):
    api = registry.client(registry.add_user("alice", scope="write"))
    assert push(api, b"bytes").status_code == 201
    download = "/api/v1/collections/lab/containers/tool/images/latest/file"
    assert statuses(api, download, 2) == [200, 429]
    too_many(api.get("/api/v1/user"))
    assert counter_keys(registry) == ["pull:container:1", "rate:token:1"]
    assert "Redis failed" in caplog.text


def test_ended_windows_are_pruned(registry, clock):
    now = int(clock())
    with registry.session() as session:
        session.add_all([Counter(key="rate:addr:old", window=now - 60, count=9), Counter(key="keep", window=now + 600)])
        session.commit()
    assert registry.client().get("/version").status_code == 200
    assert counter_keys(registry) == ["keep", "rate:addr:127.0.0.1"]


def test_a_fresh_minute_restores_the_budget(registry, limits):
    offset = [0.0]
    start = steady_clock()
    registry.context.limiter = Limiter(limits, clock=lambda: start() + offset[0])
    registry.context.limiter.bind(registry.context.bookkeeping)
    alice = registry.client(registry.add_user("alice", scope="read"))
    assert statuses(alice, "/api/v1/user", 4) == [200, 200, 200, 429]
    offset[0] = 60
    assert statuses(alice, "/api/v1/user", 4) == [200, 200, 200, 429]
