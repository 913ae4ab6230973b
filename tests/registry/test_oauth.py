"""GitHub and OpenID Connect sign-in, end to end against providers on loopback.

The OIDC provider is the real ``oidc-provider-mock`` in its own process; the GitHub-shaped provider
(``github_provider.py``) checks PKCE, which the mock does not, so the GitHub tests are the ones that
prove the registry's verifier matches its challenge. A browser is played by an httpx client that keeps
cookies and follows each redirect by hand, so every hop can be inspected.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from tornado.web import decode_signed_value

from sregistry_jupyter.registry.auth.flow import return_path
from sregistry_jupyter.registry.auth.oauth import FLOW_COOKIE, GitHubAuthenticator, OIDCAuthenticator
from sregistry_jupyter.registry.orm import User, UserIdentity
from sregistry_jupyter.registry.webapp import cookie_secret
from tests.conftest import LiveRegistry, free_port, terminate, wait_until_serving
from tests.registry.github_provider import GitHubProvider

OIDC_CLIENT = "sregistry-test"
OIDC_SECRET = "oidc-secret"


@pytest.fixture(scope="module")
def oidc_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenID Connect provider process that insists on a nonce; stopped by its PID."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("oidc") / "provider.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "oidc_provider_mock", "-p", str(port), "--require-nonce", "true"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    issuer = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, f"{issuer}/.well-known/openid-configuration", log_path, "the OIDC provider", 30)
        yield issuer
    finally:
        terminate(process, 10)


@pytest.fixture(scope="module")
def github_server() -> Iterator[GitHubProvider]:
    provider = GitHubProvider()
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
def github(github_server: GitHubProvider) -> GitHubProvider:
    github_server.reset()
    return github_server


def browser(registry: LiveRegistry) -> httpx.Client:
    return registry.client(follow_redirects=False)


def start_login(client: httpx.Client, next_url: str = "/api/v1/user") -> tuple[str, dict[str, str]]:
    """``/login`` as a browser sees it: the provider's URL and the query the registry put on it."""
    response = client.get("/login", params={"next": next_url})
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    query = {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}
    return location, query


def follow(client: httpx.Client, url: str, status: int = 302) -> httpx.Response:
    response = client.get(url)
    assert response.status_code == status, response.text
    return response


def counts(registry: LiveRegistry) -> tuple[int, int]:
    """How many users and linked identities the registry has."""
    with registry.session() as session:
        return (
            session.scalar(select(func.count()).select_from(User)),
            session.scalar(select(func.count()).select_from(UserIdentity)),
        )


def flow_verifier(registry: LiveRegistry, client: httpx.Client) -> str:
    """The PKCE verifier kept in the browser's signed flow cookie (signed, not secret from the browser)."""
    raw = decode_signed_value(cookie_secret(registry.context), FLOW_COOKIE, client.cookies[FLOW_COOKIE].strip('"'))
    return json.loads(raw)[1]


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def assert_refused(response: httpx.Response, fragment: str, status: int = 403) -> None:
    """A sign-in that failed: a page with the status and the reason, for the person in the browser."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert fragment in html.unescape(response.text)


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("/collections/a?page=2", "/collections/a?page=2"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/" + "a" * 3000, "/"),
    ],
)
def test_return_path_stays_on_the_registry_and_fits_a_cookie(raw: str, kept: str) -> None:
    assert return_path(raw) == kept


class TestOIDC:
    @pytest.fixture
    def registry_settings(self, oidc_issuer: str) -> dict:
        authenticator = OIDCAuthenticator(issuer=oidc_issuer, client_id=OIDC_CLIENT, client_secret=OIDC_SECRET)
        return {"authenticator": authenticator}

    @pytest.fixture
    def set_claims(self, oidc_issuer: str) -> Callable[..., None]:
        def put(sub: str, **claims: str) -> None:
            assert httpx.put(f"{oidc_issuer}/users/{sub}", json=claims).status_code == 204

        return put

    def sign_in_at_provider(self, authorize_url: str, sub: str) -> str:
        """The provider's consent form, submitted for ``sub``; returns the callback URL it redirects to."""
        response = httpx.post(authorize_url, data={"sub": sub})
        assert response.status_code == 302, response.text
        return response.headers["location"]

    def test_sign_in_end_to_end_and_again(
        self, registry: LiveRegistry, oidc_issuer: str, set_claims: Callable[..., None]
    ) -> None:
        set_claims("u-1001", preferred_username="Alice.Smith", email="alice@example.org")
        client = browser(registry)
        authorize_url, query = start_login(client)
        assert authorize_url.startswith(f"{oidc_issuer}/oauth2/authorize?")
        assert query["response_type"] == "code"
        assert query["client_id"] == OIDC_CLIENT
        assert query["redirect_uri"] == f"{registry.url}/oauth_callback"
        assert query["scope"] == "openid profile email"
        assert query["code_challenge_method"] == "S256"
        assert query["code_challenge"] == s256(flow_verifier(registry, client))
        assert len(query["state"]) >= 32 and query["nonce"]

        callback = self.sign_in_at_provider(authorize_url, "u-1001")
        assert callback.startswith(f"{registry.url}/oauth_callback?")
        assert follow(client, callback).headers["location"] == "/api/v1/user"
        assert FLOW_COOKIE not in client.cookies
        me = follow(client, "/api/v1/user", 200).json()
        assert me["name"] == "alice.smith"

        second = browser(registry)
        authorize_url, _ = start_login(second, "https://evil.example/")
        assert follow(second, self.sign_in_at_provider(authorize_url, "u-1001")).headers["location"] == "/"
        assert follow(second, "/api/v1/user", 200).json() == me
        assert counts(registry) == (1, 1)
        with registry.session() as session:
            identity = session.scalar(select(UserIdentity))
            assert (identity.provider, identity.subject) == (
                registry.context.authenticator.identity_provider(),
                "u-1001",
            )
            assert session.get(User, identity.user_id).email == "alice@example.org"

    def test_forged_state_and_missing_cookie_are_refused(
        self, registry: LiveRegistry, set_claims: Callable[..., None]
    ) -> None:
        set_claims("u-2002", preferred_username="bob")
        client = browser(registry)
        authorize_url, query = start_login(client)
        callback = self.sign_in_at_provider(authorize_url, "u-2002")
        forged = callback.replace(query["state"], "forged-" + query["state"][7:])
        assert_refused(client.get(forged), "not for the sign-in started in this browser")
        assert_refused(httpx.get(callback), "sign-in is in progress in this browser")
        assert counts(registry) == (0, 0)
        assert follow(client, callback).headers["location"] == "/api/v1/user"
        assert follow(client, "/api/v1/user", 200).json()["name"] == "bob"

    def test_replayed_code_refusal_and_allow_list(
        self, registry: LiveRegistry, set_claims: Callable[..., None]
    ) -> None:
        set_claims("u-3003", preferred_username="carol")
        client = browser(registry)
        authorize_url, _ = start_login(client)
        callback = self.sign_in_at_provider(authorize_url, "u-3003")
        follow(client, callback)
        code = parse_qs(urlsplit(callback).query)["code"][0]

        _, query = start_login(client)
        replay = f"/oauth_callback?code={code}&state={query['state']}"
        assert_refused(client.get(replay), "refused the sign-in code (invalid_grant")

        authorize_url, _ = start_login(client)
        denied = httpx.post(authorize_url, data={"action": "deny"}).headers["location"]
        assert_refused(client.get(denied), "did not sign you in (access_denied")

        registry.context.authenticator.allowed_users = {"carol"}
        stranger = browser(registry)
        authorize_url, _ = start_login(stranger)
        assert_refused(stranger.get(self.sign_in_at_provider(authorize_url, "u-9999")), "'u-9999' is not allowed")
        assert counts(registry) == (1, 1)


class TestGitHub:
    @pytest.fixture
    def registry_settings(self, github_server: GitHubProvider) -> dict:
        url = github_server.url
        authenticator = GitHubAuthenticator(
            client_id=github_server.client_id,
            client_secret=github_server.client_secret,
            authorize_url=f"{url}/login/oauth/authorize",
            token_url=f"{url}/login/oauth/access_token",
            user_url=f"{url}/user",
            orgs_url=f"{url}/user/orgs",
        )
        return {"authenticator": authenticator}

    def sign_in(self, registry: LiveRegistry, client: httpx.Client | None = None) -> httpx.Response:
        """A whole sign-in through the provider; the registry's answer to the callback."""
        client = client or browser(registry)
        authorize_url, _ = start_login(client)
        callback = httpx.get(authorize_url).headers["location"]
        return client.get(callback)

    def test_sign_in_checks_pkce_and_keys_users_by_id(self, registry: LiveRegistry, github: GitHubProvider) -> None:
        client = browser(registry)
        assert self.sign_in(registry, client).headers["location"] == "/api/v1/user"
        assert github.authorize_requests[0]["code_challenge_method"] == "S256"
        sent = github.token_requests[0]
        assert s256(sent["code_verifier"]) == github.authorize_requests[0]["code_challenge"]
        assert sent["client_secret"] == github.client_secret and github.refusals == []
        me = follow(client, "/api/v1/user", 200).json()
        assert re.fullmatch(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?", me["name"]) and me["name"] == "octo-cat"

        github.user = {"id": 123, "login": "Renamed-Cat"}
        renamed = browser(registry)
        self.sign_in(registry, renamed)
        assert follow(renamed, "/api/v1/user", 200).json() == me

        github.user = {"id": 456, "login": "octo-cat"}
        namesake = browser(registry)
        self.sign_in(registry, namesake)
        assert follow(namesake, "/api/v1/user", 200).json()["name"] == "octo-cat-2"
        with registry.session() as session:
            links = session.execute(select(UserIdentity.provider, UserIdentity.subject)).all()
        assert sorted(links) == [("github", "123"), ("github", "456")]

    def test_a_code_for_another_verifier_fails_cleanly(self, registry: LiveRegistry, github: GitHubProvider) -> None:
        victim = browser(registry)
        _, victim_query = start_login(victim)
        attacker = browser(registry)
        authorize_url, _ = start_login(attacker)
        stolen = parse_qs(urlsplit(httpx.get(authorize_url).headers["location"]).query)["code"][0]
        injected = victim.get(f"/oauth_callback?code={stolen}&state={victim_query['state']}")
        assert_refused(injected, "refused the sign-in code (invalid_grant")
        assert github.refusals == ["invalid_grant"]
        assert counts(registry) == (0, 0)
        assert follow(victim, "/api/v1/user", 401).json()["code"] == "UNAUTHORIZED"

    def test_allow_lists(self, registry: LiveRegistry, github: GitHubProvider) -> None:
        authenticator = registry.context.authenticator
        authenticator.allowed_users = {"someone-else"}
        assert_refused(self.sign_in(registry), "'Octo-Cat' is not allowed")
        assert counts(registry) == (0, 0)

        authenticator.allowed_organizations = {"research"}
        github.orgs = ["Research"]
        assert self.sign_in(registry).status_code == 302
        assert github.authorize_requests[-1]["scope"] == "read:org"

        github.user, github.orgs = {"id": 7, "login": "outsider"}, ["other"]
        assert_refused(self.sign_in(registry), "'outsider' is not allowed")

        authenticator.allowed_organizations = set()
        authenticator.allowed_users = {"OUTSIDER"}
        assert self.sign_in(registry).status_code == 302
        assert counts(registry) == (2, 2)

    def test_provider_failures_are_clear_errors(self, registry: LiveRegistry, github: GitHubProvider) -> None:
        github.deny = True
        assert_refused(self.sign_in(registry), "did not sign you in (access_denied: The user has denied")
        github.deny = False
        authenticator = registry.context.authenticator
        authenticator.user_url = f"{github.url}/no-such-api"
        assert_refused(self.sign_in(registry), "user API answered HTTP 404 without JSON")
        authenticator.token_url = f"http://127.0.0.1:{free_port()}/login/oauth/access_token"
        assert_refused(self.sign_in(registry), "not reach the sign-in provider's token endpoint", 502)
        assert counts(registry) == (0, 0)

    def test_terms_come_first(self, registry: LiveRegistry, github: GitHubProvider) -> None:
        registry.context.terms_of_service = "Share only what you may share."
        client = browser(registry)
        assert self.sign_in(registry, client).headers["location"] == "/terms?next=%2Fapi%2Fv1%2Fuser"
        assert "terms of service" in follow(client, "/api/v1/user", 403).json()["message"]
