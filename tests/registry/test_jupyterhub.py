"""Single sign-on through a real JupyterHub on loopback.

One hub per module (PyPI jupyterhub with npm configurable-http-proxy), started with the deployment's
own ``server/jupyterhub_config.py`` plus what a test site adds (a shared-password authenticator, local
single-user servers, a service for the test driver), and the real ``sregistry-jupyter serve`` with the
HubAuthenticator, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import psutil
import pytest
from sqlalchemy import create_engine, select, update

from sregistry_jupyter.registry.auth.jupyterhub import HubAuthenticator
from sregistry_jupyter.registry.db import normalise_url
from sregistry_jupyter.registry.orm import User, utcnow
from tests.conftest import free_port, terminate, wait_until_serving

REPO = Path(__file__).resolve().parents[2]
SERVER_CONFIG = REPO / "server" / "jupyterhub_config.py"
NPM_PREFIX = REPO / ".cache" / "npm"
PROXY = NPM_PREFIX / "node_modules" / ".bin" / "configurable-http-proxy"
AUTHENTICATOR = "sregistry_jupyter.registry.auth.jupyterhub.HubAuthenticator"
ACCESS_SCOPE = "access:services!service=sregistry"
USER_PASSWORD = "hub-user-password"
ADMIN_PASSWORD = "hub-admin-password-long-enough-for-the-hub"
STARTUP_SECONDS = 60

TEST_SITE_CONFIG = """\
c = get_config()
load_subconfig({server_config!r})
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {user_password!r}
c.SharedPasswordAuthenticator.admin_password = {admin_password!r}
c.Authenticator.admin_users = {{"alice"}}
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {home!r} + "/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = ["--allow-root"]
c.JupyterHub.services.append({{"name": "tester", "api_token": {tester_token!r}}})
c.JupyterHub.load_roles.append(
    {{"name": "tester", "scopes": ["admin:users", "admin:servers", "tokens"], "services": ["tester"]}}
)
"""


@dataclass
class Hub:
    """A running hub, the registry URL it knows, and the environment that registry runs with."""

    public_url: str
    api: httpx.Client
    registry_url: str
    registry_env: dict[str, str]

    def ensure_user(self, name: str) -> None:
        response = self.api.post(f"/users/{name}")
        assert response.status_code in (201, 409), response.text

    def token(self, name: str, scopes: list[str]) -> str:
        response = self.api.post(f"/users/{name}/tokens", json={"scopes": scopes, "expires_in": 600})
        assert response.status_code == 201, response.text
        return response.json()["token"]


@pytest.fixture(scope="session")
def proxy_command() -> Path:
    """configurable-http-proxy from the npm registry, installed once into the repository's cache."""
    if not PROXY.exists():
        subprocess.run(
            [
                "npm",
                "install",
                "--prefix",
                str(NPM_PREFIX),
                "--no-save",
                "--no-package-lock",
                "--no-audit",
                "--no-fund",
                "configurable-http-proxy@5",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return PROXY


def stop(process: psutil.Process) -> None:
    """Stop a process the hub started, if the hub's own shutdown left it running.

    psutil checks that the PID still names the process it was made for, so a PID reused since is safe.
    """
    try:
        process.terminate()
        process.wait(5)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, proxy_command: Path) -> Iterator[Hub]:
    state = tmp_path_factory.mktemp("hub")
    public, proxy_api, internal = (f"http://127.0.0.1:{free_port()}" for _ in range(3))
    registry_url = f"http://127.0.0.1:{free_port()}"
    service_token, tester_token = secrets.token_hex(32), secrets.token_hex(32)
    config = state / "test_site_config.py"
    config.write_text(
        TEST_SITE_CONFIG.format(
            server_config=str(SERVER_CONFIG),
            user_password=USER_PASSWORD,
            admin_password=ADMIN_PASSWORD,
            home=str(state / "home"),
            singleuser=str(Path(sys.executable).parent / "jupyterhub-singleuser"),
            tester_token=tester_token,
        )
    )
    env = {
        **os.environ,
        "SREGISTRY_URL": registry_url,
        "SREGISTRY_HUB_API_TOKEN": service_token,
        "SREGISTRY_HUB_BIND_URL": public,
        "SREGISTRY_HUB_INTERNAL_URL": internal,
        "SREGISTRY_HUB_PROXY_API_URL": proxy_api,
        "SREGISTRY_HUB_PROXY_COMMAND": str(proxy_command),
        "SREGISTRY_HUB_STATE_DIR": str(state),
    }
    log = state / "jupyterhub.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=state,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    api = httpx.Client(base_url=f"{internal}/hub/api", headers={"Authorization": f"token {tester_token}"}, timeout=30)
    proxy = None
    try:
        wait_until_serving(process, f"{internal}/hub/api", log, "JupyterHub", STARTUP_SECONDS)
        proxy = psutil.Process(int((state / "jupyterhub-proxy.pid").read_text()))
        yield Hub(
            public_url=public,
            api=api,
            registry_url=registry_url,
            registry_env={
                "JUPYTERHUB_API_URL": f"{internal}/hub/api",
                "JUPYTERHUB_API_TOKEN": service_token,
                "JUPYTERHUB_PUBLIC_HUB_URL": f"{public}/hub/",
                "JUPYTERHUB_SERVICE_NAME": "sregistry",
                "JUPYTERHUB_CLIENT_ID": "service-sregistry",
                "JUPYTERHUB_OAUTH_CALLBACK_URL": "",
            },
        )
    finally:
        api.close()
        terminate(process, 30)
        if proxy is not None:
            stop(proxy)


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


def follow(client: httpx.Client, response: httpx.Response, stop: Callable[[httpx.URL], bool]) -> httpx.URL:
    """Follow redirects as a browser would, until the next one points where ``stop`` says; its URL."""
    for _ in range(10):
        assert response.is_redirect, f"{response.status_code} from {response.url}: {response.text[:500]}"
        target = response.url.join(response.headers["Location"])
        if stop(target):
            return target
        response = client.get(target)
    raise AssertionError("too many redirects")


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
    without_scope = hub.token("bob", ["read:users:name!user=bob"])
    with_scope = hub.token("bob", [ACCESS_SCOPE])
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
    assert hub.api.post("/users/alice/server").status_code in (201, 202)
    deadline = time.monotonic() + STARTUP_SECONDS
    server: dict = {}
    while time.monotonic() < deadline and not server.get("ready"):
        time.sleep(0.2)
        server = hub.api.get("/users/alice").json()["servers"].get("", {})
    assert server.get("ready"), server
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
