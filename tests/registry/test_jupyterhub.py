"""Single sign-on through a real JupyterHub on loopback.

One hub per module (PyPI jupyterhub with npm configurable-http-proxy), started with the deployment's
own ``server/jupyterhub_config.py`` plus what a test site adds (a shared-password authenticator, local
single-user servers, a service for the test driver), and the real ``sregistry-jupyter serve`` with the
HubAuthenticator, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import psutil
import pytest
from sqlalchemy import create_engine, select, update

from sregistry_jupyter.registry.auth.jupyterhub import HubAuthenticator
from sregistry_jupyter.registry.db import normalise_url
from sregistry_jupyter.registry.orm import User, utcnow
from tests.hub_support import ACCESS_SCOPE, AUTHENTICATOR, Hub, HubAddresses, follow, running_hub, stop

USER_PASSWORD = "hub-user-password"
ADMIN_PASSWORD = "hub-admin-password-long-enough-for-the-hub"

AUTHENTICATION = f"""\
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {USER_PASSWORD!r}
c.SharedPasswordAuthenticator.admin_password = {ADMIN_PASSWORD!r}
c.Authenticator.admin_users = {{"alice"}}
c.Authenticator.allow_all = True
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    addresses = HubAddresses()
    scopes = ["admin:users", "admin:servers", "tokens"]
    with running_hub(tmp_path_factory.mktemp("hub"), addresses, AUTHENTICATION, scopes) as hub:
        yield hub


@pytest.fixture
def start_registry(hub: Hub, db_url: str, tmp_path: Path, server_process: Callable) -> Callable[..., str]:
    """Start the registry process at the URL the hub knows; extra arguments go to ``serve``."""

    def start(*args: str) -> str:
        server_process(
            "--port",
            str(urlsplit(hub.registry_url).port),
            "--data-dir",
            str(tmp_path / "data"),
            "--db-url",
            db_url,
            f"--RegistryApp.authenticator_class={AUTHENTICATOR}",
            f"--RegistryApp.public_url={hub.registry_url}",
            *args,
            env=hub.registry_env,
        )
        return hub.registry_url

    return start


def registry_has_user(db_url: str, name: str) -> bool:
    engine = create_engine(normalise_url(db_url))
    try:
        with engine.connect() as connection:
            return connection.execute(select(User.id).where(User.name == name)).first() is not None
    finally:
        engine.dispose()


def accept_terms(db_url: str, name: str) -> None:
    """What the terms page does when a person accepts them."""
    engine = create_engine(normalise_url(db_url))
    try:
        with engine.begin() as connection:
            connection.execute(update(User).where(User.name == name).values(terms_accepted_at=utcnow()))
    finally:
        engine.dispose()


def hub_callback(browser: httpx.Client, hub: Hub, username: str, password: str) -> httpx.URL:
    """Sign in at the registry through the hub's login form; the hub's redirect back, not yet followed."""
    start = browser.get(f"{hub.registry_url}/login", params={"next": "/api/v1/user"})
    authorize = browser.get(follow(browser, start, lambda url: True))
    query = parse_qs(authorize.url.query.decode())
    assert authorize.url.path == "/hub/api/oauth2/authorize" and str(authorize.url).startswith(hub.public_url)
    assert query["client_id"] == ["service-sregistry"] and query["code_challenge_method"] == ["S256"]
    login_form = browser.get(follow(browser, authorize, lambda url: url.path == "/hub/login"))
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', login_form.text)
    assert login_form.status_code == 200 and xsrf, login_form.text[:500]
    signed_in = browser.post(login_form.url, data={"username": username, "password": password, "_xsrf": xsrf.group(1)})
    return follow(browser, signed_in, lambda url: url.path == "/oauth_callback")


def test_browser_signs_in_through_the_hub(hub: Hub, start_registry: Callable, db_url: str) -> None:
    registry = start_registry()
    with httpx.Client(timeout=30) as browser, httpx.Client(timeout=30) as stranger:
        callback = hub_callback(browser, hub, "alice", ADMIN_PASSWORD)
        assert str(callback).startswith(f"{registry}/oauth_callback?")

        forged = browser.get(callback.copy_set_param("state", "forged"))
        assert forged.status_code == 403 and forged.headers["Content-Type"].startswith("text/html")
        assert "not for the sign-in started in this browser" in forged.text
        assert stranger.get(callback).status_code == 403  # the state belongs to the browser that started
        assert browser.get(f"{registry}/api/v1/user").status_code == 401
        assert not registry_has_user(db_url, "alice")

        done = browser.get(callback)
        assert done.status_code == 302 and done.headers["Location"] == "/terms?next=%2Fapi%2Fv1%2Fuser"
        refused = browser.get(f"{registry}/api/v1/user")
        assert refused.status_code == 403 and "terms" in refused.json()["message"]
        accept_terms(db_url, "alice")
        me = browser.get(f"{registry}/api/v1/user")
        assert me.status_code == 200 and me.json()["name"] == "alice" and me.json()["admin"] is True

        replayed = browser.get(callback)
        assert replayed.status_code == 403 and "no sign-in is in progress" in replayed.text.lower()


def test_hub_tokens_need_the_service_scope(hub: Hub, start_registry: Callable, db_url: str) -> None:
    registry = start_registry("--RegistryApp.terms_of_service=")
    hub.ensure_user("bob")
    without_scope = hub.token("bob", ["read:users:name!user=bob"], expires_in=600)
    with_scope = hub.token("bob", [ACCESS_SCOPE], expires_in=600)
    with httpx.Client(base_url=registry, timeout=30) as client:
        refused = client.get("/api/v1/user", headers={"Authorization": f"token {without_scope}"})
        assert refused.status_code == 403
        assert ACCESS_SCOPE in refused.json()["message"]
        assert not registry_has_user(db_url, "bob")
        assert client.get("/api/v1/user", headers={"Authorization": "Bearer not-a-hub-token"}).status_code == 401

        for scheme in ("token", "Bearer", "bearer"):
            me = client.get("/api/v1/user", headers={"Authorization": f"{scheme} {with_scope}"})
            assert me.status_code == 200 and (me.json()["name"], me.json()["admin"]) == ("bob", False)
        assert registry_has_user(db_url, "bob")
        minting = client.post(
            "/api/v1/user/tokens", json={"name": "x"}, headers={"Authorization": f"token {with_scope}"}
        )
        assert minting.status_code == 403  # a hub token writes but does not administer


@pytest.fixture(scope="module")
def server_environment(hub: Hub) -> Iterator[dict[str, str]]:
    """Spawn alice's single-user server once, and read the environment the hub gave it."""
    hub.ensure_user("alice")
    server = hub.start_server("alice")
    process = psutil.Process(server["state"]["pid"])
    try:
        yield process.environ()
    finally:
        hub.api.delete("/users/alice/server")
        stop(process)


def test_single_user_server_token_reaches_the_registry(
    hub: Hub, start_registry: Callable, server_environment: dict[str, str]
) -> None:
    registry = start_registry("--RegistryApp.terms_of_service=")
    assert server_environment["SREGISTRY_URL"] == registry
    token = server_environment["JUPYTERHUB_API_TOKEN"]
    me = httpx.get(f"{registry}/api/v1/user", headers={"Authorization": f"token {token}"}, timeout=30)
    assert me.status_code == 200 and me.json()["name"] == "alice"


def test_the_registry_does_not_import_jupyterhub_unless_it_signs_in_through_it() -> None:
    check = (
        "import sys\n"
        "from sregistry_jupyter.registry.app import RegistryApp\n"
        "from sregistry_jupyter.registry.auth.jupyterhub import HubAuthenticator\n"
        "HubAuthenticator(parent=RegistryApp())\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'jupyterhub'))\n"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


@pytest.fixture
def silent_hub() -> Iterator[str]:
    """A hub API that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hub/api"


@pytest.fixture
def registry_settings(silent_hub: str) -> dict:
    authenticator = HubAuthenticator(
        api_url=silent_hub, api_token="service-secret", callback_url="http://127.0.0.1/oauth_callback", timeout=0.5
    )
    return {"authenticator": authenticator}


def test_a_silent_hub_delays_hub_tokens_only_for_the_timeout(registry) -> None:
    client = registry.client()
    started = time.monotonic()
    waited = client.get("/api/v1/user", headers={"Authorization": "token a-hub-token"})
    assert waited.status_code == 502 and waited.json()["code"] == "HUB_ERROR"
    assert "did not answer within 0.5 seconds" in waited.json()["message"]
    assert time.monotonic() - started < 5
    own_token = registry.add_user("carol")
    assert client.get("/api/v1/user", headers={"Authorization": f"Bearer {own_token}"}).json()["name"] == "carol"
