"""The request core: who is asking, sessions that end on the server, XSRF bound to the session, the Host
header kept out of generated URLs, and an event loop that no database lock, slow hub or crowd of
concurrent requests can freeze."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from sregistry_jupyter.registry.auth.jupyterhub import HubAuthenticator
from sregistry_jupyter.registry.auth.local import LocalAuthenticator
from tests.conftest import LiveRegistry, open_context, start_in_thread
from tests.registry.test_sign_in import add_person, browser, sign_in, xsrf_of

API = "/api/v1"


def timed(client: httpx.Client, method: str, path: str, **kwargs) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.request(method, path, **kwargs)
    return response, time.monotonic() - started


LOCAL_SIGN_IN = [{"authenticator": LocalAuthenticator(), "terms_of_service": ""}]


@pytest.mark.parametrize("registry_settings", LOCAL_SIGN_IN)
def test_sign_out_ends_the_session_on_the_server(registry):
    add_person(registry, "alice")
    client = browser(registry)
    assert sign_in(client, "alice").status_code == 303
    copied = httpx.Client(base_url=registry.url, cookies=dict(client.cookies), timeout=30)
    assert copied.get(f"{API}/user").json()["name"] == "alice"
    assert client.post("/logout", data={"_xsrf": xsrf_of(client)}).status_code == 303
    assert copied.get(f"{API}/user").status_code == 401
    copied.close()


@pytest.mark.parametrize("registry_settings", LOCAL_SIGN_IN)
def test_the_xsrf_value_is_bound_to_the_session(registry):
    add_person(registry, "alice")
    add_person(registry, "bob")
    alice, bob = browser(registry), browser(registry)
    assert sign_in(alice, "alice").status_code == 303
    assert sign_in(bob, "bob").status_code == 303
    body = json.dumps({"name": "mine"})
    chosen = {"X-XSRF-Token": "chosen-by-the-attacker"}
    alice.cookies.set("_xsrf", "chosen-by-the-attacker")
    assert alice.post(f"{API}/collections", content=body, headers=chosen).status_code == 403
    assert alice.post(f"{API}/collections", content=body, headers={"X-XSRF-Token": xsrf_of(bob)}).status_code == 403
    made = alice.post(f"{API}/collections", content=body, headers={"X-XSRF-Token": xsrf_of(alice)})
    assert made.status_code == 201, made.text


def test_an_unknown_host_is_refused_in_each_surfaces_envelope(registry):
    client = registry.client()
    forged = {"Host": "evil.example"}
    library = client.get("/assets/config/config.prod.json", headers=forged)
    assert library.status_code == 400 and "evil.example" in library.text
    native = client.get(f"{API}/collections", headers=forged)
    assert native.status_code == 400 and native.json()["code"] == "INVALID"
    shub = client.get("/api/collections", headers=forged)
    assert shub.status_code == 400 and "evil.example" in shub.json()["detail"]
    for host in ("localhost", f"127.0.0.1:{httpx.URL(registry.url).port}"):
        config = client.get("/assets/config/config.prod.json", headers={"Host": host})
        assert config.status_code == 200 and config.json()["libraryAPI"]["uri"] == f"http://{host}"


@pytest.mark.parametrize("registry_settings", [{"public_url": "https://registry.example.org"}])
def test_with_a_public_url_generated_urls_ignore_the_host_header(registry):
    client = registry.client()
    config = client.get("/assets/config/config.prod.json", headers={"Host": "evil.example"})
    assert config.status_code == 200
    assert {service["uri"] for service in config.json().values() if "uri" in service} == {
        "https://registry.example.org"
    }


@pytest.fixture
def locked_registry(tmp_path: Path) -> Iterator[LiveRegistry]:
    """A registry on SQLite whose statements give up on a lock after one second."""
    db_url = f"sqlite:///{tmp_path / 'registry.db'}"
    context = open_context(db_url, tmp_path / "data", lock_wait=1.0)
    url, stop = start_in_thread(context)
    live = LiveRegistry(url, context, tmp_path / "data", db_url)
    yield live
    for client in live.clients:
        client.close()
    stop()


def test_while_another_process_holds_the_write_lock_reads_go_on_and_writes_answer_503(locked_registry):
    registry = locked_registry
    client = registry.client(registry.add_user("alice"))
    holder = sqlite3.connect(registry.db_url.removeprefix("sqlite:///"), timeout=1)
    holder.execute("BEGIN IMMEDIATE")
    try:
        for path in ("/version", "/assets/config/config.prod.json", f"{API}/collections", f"{API}/user"):
            response, seconds = timed(client, "GET", path)
            assert response.status_code == 200 and seconds < 0.5, (path, response.text, seconds)
        refused, seconds = timed(client, "POST", f"{API}/collections", json={"name": "waiting"})
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"].isdigit() and "busy" in refused.json()["message"]
        assert seconds < 5
    finally:
        holder.rollback()
        holder.close()
    assert client.post(f"{API}/collections", json={"name": "waiting"}).status_code == 201


def test_a_write_waiting_for_the_lock_does_not_stop_the_event_loop(locked_registry):
    registry = locked_registry
    client = registry.client(registry.add_user("alice"))
    holder = sqlite3.connect(registry.db_url.removeprefix("sqlite:///"), timeout=1)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with ThreadPoolExecutor(4) as pool:
            writes = [pool.submit(client.post, f"{API}/collections", json={"name": f"w{i}"}) for i in range(3)]
            time.sleep(0.2)
            during = [timed(client, "GET", "/version")[1] for _ in range(5)]
            assert [w.result().status_code for w in writes] == [503, 503, 503]
    finally:
        holder.rollback()
        holder.close()
    assert max(during) < 0.3, during


def test_concurrent_token_requests_with_limits_off_all_succeed_while_version_stays_quick(registry):
    tokens = [registry.add_user(f"user{i}") for i in range(20)]
    clients = [registry.client(token) for token in tokens]

    def work(client: httpx.Client) -> list[int]:
        made = [client.post(f"{API}/collections", json={"name": f"c{id(client)}-{i}"}) for i in range(3)]
        read = [client.get(f"{API}/user") for _ in range(3)]
        return [response.status_code for response in made + read]

    with ThreadPoolExecutor(20) as pool:
        results = [pool.submit(work, client) for client in clients]
        probes = []
        while not all(r.done() for r in results):
            probes.append(timed(registry.client(), "GET", "/version")[1])
        statuses = [status for r in results for status in r.result()]
    assert statuses == [201, 201, 201, 200, 200, 200] * 20
    assert max(probes) < 1.0, sorted(probes)[-5:]


class SlowHub:
    """A stand-in for JupyterHub's ``GET /hub/api/user`` that answers after ``delay`` seconds.

    A real hub cannot be told to be slow, and what is tested here is only that waiting for the hub
    holds up nobody else; the real hub is used by ``test_jupyterhub.py``.
    """

    def __init__(self, delay: float, scopes: list[str]) -> None:
        self.delay, self.scopes = delay, scopes
        self.url = ""

    def start(self) -> None:
        hub = self

        class UserHandler(web.RequestHandler):
            async def get(self) -> None:
                token = self.request.headers.get("Authorization", "").partition(" ")[2]
                await asyncio.sleep(hub.delay)
                if token != "hub-token-carol":
                    self.set_status(403)
                    self.finish({"message": "no such token"})
                    return
                self.finish({"kind": "user", "name": "carol", "admin": False, "scopes": hub.scopes})

        ready = threading.Event()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            server = HTTPServer(web.Application([(r"/hub/api/user", UserHandler)]))
            sockets = bind_sockets(0, "127.0.0.1")
            server.add_sockets(sockets)
            self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
            ready.set()
            self.loop.run_forever()
            server.stop()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def hub_registry(db_url: str, tmp_path: Path, hub: SlowHub, **settings) -> tuple[LiveRegistry, callable]:
    authenticator = HubAuthenticator(
        api_url=f"{hub.url}/hub/api",
        api_token="service-token",
        callback_url="http://127.0.0.1/oauth_callback",
        hub_public_url=f"{hub.url}/hub/",
        timeout=10,
    )
    context = open_context(db_url, tmp_path / "data", authenticator=authenticator, terms_of_service="", **settings)
    url, stop = start_in_thread(context)
    return LiveRegistry(url, context, tmp_path / "data", db_url), stop


@pytest.fixture
def slow_hub() -> Iterator[SlowHub]:
    hub = SlowHub(3.0, ["access:services!service=sregistry"])
    hub.start()
    yield hub
    hub.stop()


def test_a_slow_hub_delays_no_other_request(db_url, tmp_path, slow_hub):
    registry, stop = hub_registry(db_url, tmp_path, slow_hub)
    try:
        token = registry.add_user("dave")
        with ThreadPoolExecutor(2) as pool:
            hub_call = pool.submit(
                timed, registry.client(), "GET", f"{API}/user", headers={"Authorization": "token hub-token-carol"}
            )
            time.sleep(0.2)
            others = [timed(registry.client(token), "GET", f"{API}/user") for _ in range(3)]
            others.append(timed(registry.client(), "GET", "/version"))
            answered, seconds = hub_call.result()
        assert answered.status_code == 200 and answered.json()["name"] == "carol"
        assert seconds >= 2.9
        assert all(response.status_code == 200 and took < 0.5 for response, took in others), others
    finally:
        stop()


@pytest.fixture
def quick_hub() -> Iterator[SlowHub]:
    hub = SlowHub(0.0, ["access:services!service=sregistry"])
    hub.start()
    yield hub
    hub.stop()


def test_a_hub_token_does_what_its_person_may_do_in_the_pages_but_not_mint_tokens(db_url, tmp_path, quick_hub):
    registry, stop = hub_registry(db_url, tmp_path, quick_hub)
    try:
        hub = registry.client()
        hub.headers["Authorization"] = "token hub-token-carol"
        assert hub.post(f"{API}/collections", json={"name": "carols"}).status_code == 201
        assert hub.patch(f"{API}/collections/carols", json={"private": True}).json()["private"] is True
        minted = hub.post(f"{API}/user/tokens", json={"name": "from a notebook", "scope": "read"})
        assert minted.status_code == 403 and "token" in minted.json()["message"]
        assert hub.get(f"{API}/user/tokens").status_code == 200
        assert hub.delete(f"{API}/collections/carols").status_code == 204
    finally:
        stop()


@pytest.mark.parametrize("registry_settings", [{"terms_of_service": "Be nice."}])
def test_token_status_accepts_a_good_token_before_the_terms_and_use_says_where_to_accept(registry):
    token = registry.add_user("erin")
    client = registry.client(token)
    assert client.get("/v1/token-status").status_code == 200
    refused = client.get(f"{API}/user")
    assert refused.status_code == 403 and re.search(r"terms of service.*/terms", refused.json()["message"])
