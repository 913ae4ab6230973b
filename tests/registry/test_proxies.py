"""Proxy headers count only from trusted proxies: forged ones from anyone else change neither the address
that limits and logs see nor the scheme of the links the registry hands out."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from sregistry_jupyter.registry.proxies import TrustedProxies
from tests.conftest import run_cli, wait_for
from tests.registry.conftest import LoggedServer

pytestmark = pytest.mark.slow

LIMITS = ("--RegistryApp.anonymous_rate_limit=3", "--RegistryApp.limit_exempt_networks=10.0.0.0/8")


def statuses(server: LoggedServer, headers: dict[str, str], times: int = 5) -> list[int]:
    return [httpx.get(f"{server.url}/api/v1/collections", headers=headers).status_code for _ in range(times)]


def access_remotes(server: LoggedServer, path: str) -> list[str]:
    return [line["remote"] for line in server.json_lines() if line.get("path") == path]


def library_uri(server: LoggedServer, headers: dict[str, str]) -> str:
    return httpx.get(f"{server.url}/assets/config/config.prod.json", headers=headers).json()["libraryAPI"]["uri"]


def test_without_trusted_proxies_forged_headers_change_nothing(serve):
    server = serve("--log-format", "json", *LIMITS)
    forged = {"X-Forwarded-For": "10.1.2.3", "X-Real-Ip": "10.1.2.3", "X-Forwarded-Proto": "https"}
    assert library_uri(server, forged).startswith("http://127.0.0.1:")
    assert statuses(server, forged) == [200, 200, 429, 429, 429]  # the address's budget of 3, one spent above
    assert wait_for(lambda: len(access_remotes(server, "/api/v1/collections")) == 5)
    assert set(access_remotes(server, "/api/v1/collections")) == {"127.0.0.1"}


def test_a_trusted_proxy_is_believed_and_what_clients_forged_before_it_is_not(serve):
    server = serve("--log-format", "json", "--RegistryApp.trusted_proxies=127.0.0.1", *LIMITS)
    inside = {"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https"}
    assert statuses(server, inside, 6) == [200] * 6  # an exempt network, as the proxy says
    assert library_uri(server, inside).startswith("https://127.0.0.1:")
    forged_then_appended = {"X-Forwarded-For": "10.9.9.9, 203.0.113.5"}
    assert statuses(server, forged_then_appended) == [200, 200, 200, 429, 429]
    assert statuses(server, {"X-Forwarded-For": "203.0.113.6"}, 1) == [200]  # another client has its own budget
    assert wait_for(lambda: len(access_remotes(server, "/api/v1/collections")) == 12)
    assert access_remotes(server, "/api/v1/collections") == ["10.1.2.3"] * 6 + ["203.0.113.5"] * 5 + ["203.0.113.6"]


def test_audit_rows_record_the_client_behind_a_trusted_proxy(serve):
    server = serve("--RegistryApp.trusted_proxies=127.0.0.0/8")
    run_cli("admin", "create-user", "alice", "--data-dir", str(server.data_dir))
    token = run_cli("admin", "create-token", "alice", "--data-dir", str(server.data_dir)).stdout.split()[-1]
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "198.51.100.20"}
    data = b"x" * 100
    digest = "sha256." + hashlib.sha256(data).hexdigest()
    pushed = httpx.post(
        f"{server.url}/api/v1/collections/lab/containers/tools/images",
        params={"digest": digest, "tag": "latest"},
        content=data,
        headers=headers,
    )
    assert pushed.status_code == 201, pushed.text
    assert wait_for(lambda: "push by alice lab/tools:latest" in server.text())
    assert "from 198.51.100.20" in next(line for line in server.text().splitlines() if "push by alice" in line)


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("192.0.2.1", ["10.0.0.1"], "192.0.2.1"),  # not a proxy: its header is the client's own claim
        ("10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
        ("10.0.0.2", ["1.1.1.1, 198.51.100.7, 10.0.0.9"], "198.51.100.7"),  # two trusted hops
        ("10.0.0.2", ["1.1.1.1", "198.51.100.7"], "198.51.100.7"),  # the header sent twice
        ("10.0.0.2", ["10.0.0.5, 10.0.0.9"], "10.0.0.5"),  # every hop trusted: the leftmost
        ("10.0.0.2", ["unknown"], "10.0.0.2"),  # not an address: the trusted hop that wrote it
        ("10.0.0.2", ["[2001:db8::1]:4711"], "2001:db8::1"),
        ("10.0.0.2", ["198.51.100.7:5000"], "198.51.100.7"),
        ("10.0.0.2", [], "10.0.0.2"),
        ("::ffff:10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
    ],
)
def test_the_client_is_the_first_untrusted_address_from_the_right(peer, forwarded, client):
    assert TrustedProxies.from_config(["10.0.0.0/8"]).client_address(peer, forwarded) == client


def test_the_scheme_comes_only_from_a_trusted_proxy_and_only_if_it_is_one():
    proxies = TrustedProxies.from_config(["10.0.0.2"])
    assert proxies.scheme("10.0.0.2", "https", "http") == "https"
    assert proxies.scheme("10.0.0.2", "http, https", "http") == "https"
    assert proxies.scheme("10.0.0.2", "gopher", "http") == "http"
    assert proxies.scheme("10.0.0.3", "https", "http") == "http"


def test_trusted_proxies_must_be_networks():
    refused = run_cli("serve", "--RegistryApp.trusted_proxies=not-a-network", "--port", "0", check=False)
    assert refused.returncode != 0
    assert "'not-a-network' is not a network (CIDR) or an address" in refused.stderr
