"""A real JupyterHub on loopback for the tests that sign in through one.

The hub runs the deployment's own ``server/jupyterhub_config.py`` plus what a test site adds (its
authenticator, local single-user servers, a ``tester`` service whose token drives the hub's API), behind
configurable-http-proxy from npm. The registry is the hub's ``sregistry`` service: ``HubAddresses`` holds
the URLs and tokens that both the hub and the registry process have to agree on.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from tests.conftest import free_port, terminate, wait_until_serving

REPO = Path(__file__).resolve().parents[1]
SERVER_CONFIG = REPO / "server" / "jupyterhub_config.py"
NPM_PREFIX = REPO / ".cache" / "npm"
PROXY = NPM_PREFIX / "node_modules" / ".bin" / "configurable-http-proxy"
AUTHENTICATOR = "sregistry_jupyter.registry.auth.jupyterhub.HubAuthenticator"
ACCESS_SCOPE = "access:services!service=sregistry"
STARTUP_SECONDS = 60


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


def follow(client: httpx.Client, response: httpx.Response, until: Callable[[httpx.URL], bool]) -> httpx.URL:
    """Follow redirects as a browser would, until the next one points where ``until`` says; its URL."""
    for _ in range(10):
        assert response.is_redirect, f"{response.status_code} from {response.url}: {response.text[:500]}"
        target = response.url.join(response.headers["Location"])
        if until(target):
            return target
        response = client.get(target)
    raise AssertionError("too many redirects")


@dataclass(frozen=True)
class HubAddresses:
    """Free loopback URLs for the hub, its proxy and the registry, and the two API tokens, chosen before
    anything starts because the site's configuration and the registry's environment both name them."""

    public_url: str = field(default_factory=lambda: f"http://127.0.0.1:{free_port()}")
    proxy_api_url: str = field(default_factory=lambda: f"http://127.0.0.1:{free_port()}")
    internal_url: str = field(default_factory=lambda: f"http://127.0.0.1:{free_port()}")
    registry_url: str = field(default_factory=lambda: f"http://127.0.0.1:{free_port()}")
    service_token: str = field(default_factory=lambda: secrets.token_hex(32))
    tester_token: str = field(default_factory=lambda: secrets.token_hex(32))

    @property
    def registry_env(self) -> dict[str, str]:
        """The environment a hub gives a service it starts, for the registry process started beside it."""
        return {
            "JUPYTERHUB_API_URL": f"{self.internal_url}/hub/api",
            "JUPYTERHUB_API_TOKEN": self.service_token,
            "JUPYTERHUB_PUBLIC_HUB_URL": f"{self.public_url}/hub/",
            "JUPYTERHUB_SERVICE_NAME": "sregistry",
            "JUPYTERHUB_CLIENT_ID": "service-sregistry",
            "JUPYTERHUB_OAUTH_CALLBACK_URL": "",
        }


@dataclass
class Hub:
    """A running hub, driven through its API as the ``tester`` service."""

    addresses: HubAddresses
    process: subprocess.Popen
    api: httpx.Client
    home: Path

    @property
    def public_url(self) -> str:
        return self.addresses.public_url

    @property
    def registry_url(self) -> str:
        return self.addresses.registry_url

    @property
    def registry_env(self) -> dict[str, str]:
        return self.addresses.registry_env

    def ensure_user(self, name: str) -> None:
        response = self.api.post(f"/users/{name}")
        assert response.status_code in (201, 409), response.text

    def token(self, name: str, scopes: list[str], expires_in: int | None = None) -> str:
        """A hub token of ``name`` with ``scopes``, issued through the hub's API."""
        body: dict = {"scopes": scopes}
        if expires_in is not None:
            body["expires_in"] = expires_in
        response = self.api.post(f"/users/{name}/tokens", json=body)
        assert response.status_code == 201, response.text
        return response.json()["token"]

    def start_server(self, name: str) -> dict:
        """Spawn ``name``'s single-user server and wait until the hub says it is ready; the hub's model of it."""
        assert self.api.post(f"/users/{name}/server").status_code in (201, 202)
        deadline = time.monotonic() + STARTUP_SECONDS
        server: dict = {}
        while time.monotonic() < deadline:
            server = self.api.get(f"/users/{name}").json()["servers"].get("", {})
            if server.get("ready"):
                return server
            time.sleep(0.2)
        raise AssertionError(f"{name}'s server did not start: {server}")


def site_config(addresses: HubAddresses, home: Path, authentication: str, tester_scopes: list[str]) -> str:
    """The hub's configuration file: the deployment's, then the site's ``authentication`` lines, then local
    single-user servers under ``home`` and the ``tester`` service with ``tester_scopes``."""
    singleuser = str(Path(sys.executable).parent / "jupyterhub-singleuser")
    tester_role = {"name": "tester", "scopes": tester_scopes, "services": ["tester"]}
    return (
        f"c = get_config()\n"
        f"load_subconfig({str(SERVER_CONFIG)!r})\n"
        f"{authentication}"
        f'c.JupyterHub.spawner_class = "simple"\n'
        f'c.SimpleLocalProcessSpawner.home_dir_template = {str(home)!r} + "/{{username}}"\n'
        f"c.Spawner.cmd = [{singleuser!r}]\n"
        f'c.Spawner.args = ["--allow-root"]\n'
        f'c.JupyterHub.services.append({{"name": "tester", "api_token": {addresses.tester_token!r}}})\n'
        f"c.JupyterHub.load_roles.append({tester_role!r})\n"
    )


@contextmanager
def running_hub(state: Path, addresses: HubAddresses, authentication: str, tester_scopes: list[str]) -> Iterator[Hub]:
    """A hub started in ``state`` (its database, logs and the users' homes), stopped with its proxy on exit."""
    home = state / "home"
    config = state / "site_config.py"
    config.write_text(site_config(addresses, home, authentication, tester_scopes))
    env = {
        **os.environ,
        "SREGISTRY_URL": addresses.registry_url,
        "SREGISTRY_HUB_API_TOKEN": addresses.service_token,
        "SREGISTRY_HUB_BIND_URL": addresses.public_url,
        "SREGISTRY_HUB_INTERNAL_URL": addresses.internal_url,
        "SREGISTRY_HUB_PROXY_API_URL": addresses.proxy_api_url,
        "SREGISTRY_HUB_PROXY_COMMAND": str(proxy_command()),
        "SREGISTRY_HUB_STATE_DIR": str(state),
    }
    for name in ("SREGISTRY_TOKEN", "JUPYTERHUB_API_TOKEN"):  # the test runner's own, not the hub's
        env.pop(name, None)
    log = state / "jupyterhub.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=state,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    api = httpx.Client(
        base_url=f"{addresses.internal_url}/hub/api",
        headers={"Authorization": f"token {addresses.tester_token}"},
        timeout=30,
    )
    proxy = None
    try:
        wait_until_serving(process, f"{addresses.internal_url}/hub/api", log, "JupyterHub", STARTUP_SECONDS)
        proxy = psutil.Process(int((state / "jupyterhub-proxy.pid").read_text()))
        yield Hub(addresses, process, api, home)
    finally:
        api.close()
        terminate(process, 30)
        if proxy is not None:
            stop(proxy)
