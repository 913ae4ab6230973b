"""From an institutional sign-in to a push from a notebook, whole, on loopback.

A real JupyterHub (the deployment's ``server/jupyterhub_config.py`` plus what a site adds) signs people
in with oauthenticator's ``GenericOAuthenticator`` against a real OpenID Connect provider
(``oidc-provider-mock``), spawns real single-user servers in which the package is installed (so the
extension is enabled by its ``jupyter_server_config.d`` file alone), and the real registry process
accepts their hub tokens. Access to the registry is given to the group ``lab``; carol is not in it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests.conftest import free_port, run_cli, start_process, terminate, wait_until_serving
from tests.gotools import build_go_program, make_sif
from tests.hub_support import ACCESS_SCOPE, AUTHENTICATOR, Hub, HubAddresses, follow, running_hub


def authentication(issuer: str, public_url: str) -> str:
    """oauthenticator against the provider at ``issuer``, and the registry for the group ``lab`` only."""
    return f"""\
c.JupyterHub.authenticator_class = "oauthenticator.generic.GenericOAuthenticator"
c.GenericOAuthenticator.client_id = "jupyterhub"
c.GenericOAuthenticator.client_secret = "hub-oidc-secret"
c.GenericOAuthenticator.authorize_url = {issuer!r} + "/oauth2/authorize"
c.GenericOAuthenticator.token_url = {issuer!r} + "/oauth2/token"
c.GenericOAuthenticator.userdata_url = {issuer!r} + "/userinfo"
c.GenericOAuthenticator.oauth_callback_url = {public_url!r} + "/hub/oauth_callback"
c.GenericOAuthenticator.scope = ["openid"]
c.GenericOAuthenticator.username_claim = "sub"
c.GenericOAuthenticator.allow_all = True
# The registry is for the lab's group only, as server/README.md suggests for a site that restricts it.
for role in c.JupyterHub.load_roles:
    if role["name"] == "user":
        role["scopes"] = [s for s in role["scopes"] if s != {ACCESS_SCOPE!r}]
c.JupyterHub.load_roles.append({{"name": "registry-users", "scopes": [{ACCESS_SCOPE!r}], "groups": ["lab"]}})
c.JupyterHub.load_groups = {{"lab": {{"users": ["alice", "bob"]}}}}
"""


@dataclass
class Site:
    hub: Hub
    issuer: str
    registry_args: list[str]

    def sign_in(self, name: str) -> httpx.Client:
        """A browser that signed in to the hub at the identity provider as ``name``."""
        browser = httpx.Client(timeout=30, follow_redirects=False)

        def signed_in(url: httpx.URL) -> bool:
            return url.path.startswith(("/hub/spawn", "/user/")) or url.path in ("/hub/", "/hub/home")

        def at_provider(url: httpx.URL) -> bool:
            return str(url).startswith(f"{self.issuer}/oauth2/authorize") or signed_in(url)

        target = follow(browser, browser.get(f"{self.hub.public_url}/hub/oauth_login"), at_provider)
        if not signed_in(target):
            response = httpx.post(target, data={"sub": name}, timeout=30)  # the provider's sign-in form
            follow(browser, response, signed_in)
        return browser

    def start_server(self, name: str) -> None:
        self.hub.start_server(name)

    def server_token(self, name: str) -> str:
        """A token for driving ``name``'s server as the Lab panel would (not a registry credential)."""
        return self.hub.token(name, [f"access:servers!user={name}"])


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "oidc_provider_mock", "-p", str(port)], stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, f"{url}/.well-known/openid-configuration", log, "the OIDC provider", 30)
        yield url
    finally:
        terminate(process, 10)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, issuer: str) -> Iterator[Site]:
    state = tmp_path_factory.mktemp("site")
    addresses = HubAddresses()
    data = ["--data-dir", str(state / "registry"), "--db-url", f"sqlite:///{state / 'registry.db'}"]
    registry = start_process(
        "--port",
        addresses.registry_url.rsplit(":", 1)[1],
        *data,
        f"--RegistryApp.authenticator_class={AUTHENTICATOR}",
        f"--RegistryApp.public_url={addresses.registry_url}",
        "--RegistryApp.terms_of_service=",
        env=addresses.registry_env,
    )
    scopes = ["admin:users", "admin:servers", "tokens", "access:servers"]
    try:
        with running_hub(state, addresses, authentication(issuer, addresses.public_url), scopes) as hub:
            try:
                yield Site(hub, issuer, data)
            finally:
                if hub.process.poll() is None:
                    for name in ("alice", "carol"):
                        hub.api.delete(f"/users/{name}/server")
    finally:
        registry.stop()


async def run_in_kernel(server: str, token: str, code: str) -> str:
    """Run ``code`` in a new kernel of the single-user server, over the kernel's websocket; its stdout."""
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:
        kernel = (await http.post(f"{server}/api/kernels", json={"name": "python3"})).json()
        try:
            url = f"{server.replace('http', 'ws', 1)}/api/kernels/{kernel['id']}/channels"
            socket = await websocket_connect(HTTPRequest(url, headers=headers))
            msg_id = uuid.uuid4().hex
            socket.write_message(
                json.dumps(
                    {
                        "header": {
                            "msg_id": msg_id,
                            "username": "test",
                            "session": uuid.uuid4().hex,
                            "msg_type": "execute_request",
                            "version": "5.3",
                        },
                        "parent_header": {},
                        "metadata": {},
                        "channel": "shell",
                        "content": {
                            "code": code,
                            "silent": False,
                            "store_history": False,
                            "user_expressions": {},
                            "allow_stdin": False,
                            "stop_on_error": True,
                        },
                    }
                )
            )
            output = []
            while True:
                message = json.loads(await asyncio.wait_for(socket.read_message(), 60))
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = message["header"]["msg_type"]
                if kind == "stream":
                    output.append(message["content"]["text"])
                elif kind == "error":
                    output.append("\n".join(message["content"]["traceback"]))
                elif kind == "status" and message["content"]["execution_state"] == "idle":
                    socket.close()
                    return "".join(output)
        finally:
            await http.delete(f"{server}/api/kernels/{kernel['id']}")


def test_sign_in_then_push_share_and_pull_from_the_single_user_server(site: Site, tmp_path: Path) -> None:
    for name in ("alice", "bob", "carol"):
        site.sign_in(name).close()  # each signs in once at the identity provider, so the hub knows them
    run_cli("admin", "create-user", "bob", *site.registry_args)
    run_cli("admin", "create-user", "alice", *site.registry_args)
    run_cli("admin", "create-team", "lab-team", "--owner", "alice", *site.registry_args)
    run_cli("admin", "add-team-member", "lab-team", "bob", *site.registry_args)

    site.start_server("alice")
    (site.hub.home / "alice" / "images").mkdir(parents=True, exist_ok=True)
    image = make_sif(
        build_go_program("mksif", tmp_path / "gobin"),
        site.hub.home / "alice" / "images" / "tools.sif",
        size=512 << 10,
        deffile="Bootstrap: docker\nFrom: alpine\n",
    )
    server = f"{site.hub.public_url}/user/alice"

    browser = site.sign_in("alice")  # the person's own browser, through the hub's OAuth to her server
    lab_page = browser.get(f"{server}/lab", follow_redirects=True)
    assert lab_page.status_code == 200 and "JupyterLab" in lab_page.text
    me = browser.get(f"{server}/sregistry/api/whoami")
    browser.close()
    assert me.status_code == 200, me.text
    assert me.json()["user"]["name"] == "alice" and me.json()["registry_url"] == site.hub.registry_url

    lab = httpx.Client(
        base_url=f"{server}/sregistry/api", timeout=60, headers={"Authorization": f"token {site.server_token('alice')}"}
    )
    started = lab.post(
        "/transfers", json={"direction": "push", "path": "images/tools.sif", "ref": "alice-lab/tools:v1"}
    )
    assert started.status_code == 202, started.text
    for _ in range(600):
        transfer = lab.get(f"/transfers/{started.json()['id']}").json()
        if transfer["state"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.1)
    assert transfer["state"] == "done", transfer
    assert transfer["result"]["size"] == image.stat().st_size

    assert lab.get("/teammates").json() == {"items": [{"name": "bob"}]}
    # A hub token stands for its person: from the notebook server alice shares with a team-mate as she
    # would in the web pages.
    shared = lab.post("/collections/alice-lab/members", json={"user": "bob", "role": "contributor"})
    assert shared.status_code == 201, shared.text
    members = lab.get("/collections/alice-lab/members").json()["items"]
    assert {(m["user"], m["role"]) for m in members} >= {("bob", "contributor")}
    link = lab.post("/shares", json={"ref": "alice-lab/tools:v1", "days": 3})
    assert link.status_code == 201 and httpx.get(link.json()["url"], timeout=30).content == image.read_bytes()

    code = (
        "from sregistry_jupyter.client import RegistryClient\n"
        "client = RegistryClient()\n"
        "print(client.whoami().name, client.settings.token_source)\n"
        "print(client.image('alice-lab/tools:v1').digest)\n"
        "print(client.pull('alice-lab/tools:v1', 'pulled.sif'))\n"
    )
    printed = asyncio.run(run_in_kernel(server, site.server_token("alice"), code)).split("\n")
    assert printed[0] == "alice JUPYTERHUB_API_TOKEN", printed
    assert printed[1] == transfer["result"]["digest"]
    assert (site.hub.home / "alice" / "pulled.sif").read_bytes() == image.read_bytes()
    lab.close()


def test_someone_without_the_service_scope_is_told_why(site: Site) -> None:
    site.sign_in("carol").close()
    site.start_server("carol")
    token = site.server_token("carol")
    with httpx.Client(
        base_url=f"{site.hub.public_url}/user/carol/sregistry/api",
        timeout=60,
        headers={"Authorization": f"token {token}"},
    ) as lab:
        me = lab.get("/whoami").json()
        assert me["user"] is None and "JupyterHub token" in me["message"] and "administrators" in me["message"]
        refused = lab.get("/pushable")  # the registry refuses the token (401) or its missing scope (403)
        assert refused.status_code in (401, 403) and "administrators" in refused.json()["message"]
