"""Sign-in through an outside OAuth 2 provider (GitHub) or OpenID Connect issuer, for a registry that
stands alone rather than behind JupyterHub.

The registry runs the authorization-code flow itself with two handlers. ``/login`` sends the browser to
the provider with a random ``state`` and a PKCE challenge, and keeps the state, the PKCE verifier and the
page to return to in a short-lived signed cookie bound to that browser. ``/oauth_callback`` accepts a
code only together with the state of that cookie (so another site cannot sign a browser in to the
attacker's account), redeems it with the verifier (so a code intercepted on its way back is useless to
whoever took it), asks the provider who signed in, and links that identity to a registry user through
``sessions.sign_in``. Identities are keyed by the provider's stable subject, never by a user name, which
people can change and providers can reassign.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

from sqlalchemy.orm import Session
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Set, Unicode, default

from ..access import Identity
from ..errors import InvalidInput, RegistryError, SignInFailed
from ..handlers.base import BaseHandler
from ..handlers.pages.base import PageHandler
from . import sessions
from .base import Authenticator
from .flow import Flow, remember_flow, return_path, take_flow

FLOW_COOKIE = "sregistry-oauth-flow"
CALLBACK_PATH = "/oauth_callback"
SECRET_ENV = "SREGISTRY_OAUTH_CLIENT_SECRET"
HTTP_TIMEOUT = 20.0
ID_TOKEN_LEEWAY = 60


class ProviderError(RegistryError):
    """The provider could not be reached, or its configuration cannot be used."""

    status = 502
    code = "PROVIDER_ERROR"


@dataclass(frozen=True)
class OutsideIdentity:
    """Who the provider says signed in: a stable subject, a wanted user name and perhaps an email."""

    subject: str
    username: str
    email: str | None = None


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, without checking its signature (see ``OIDCAuthenticator.id_token_claims``)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        raise SignInFailed("the provider returned an ID token that cannot be read") from None
    if not isinstance(claims, dict):
        raise SignInFailed("the provider returned an ID token that cannot be read")
    return claims


async def fetch_json(
    url: str, *, what: str, method: str = "GET", body: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """Status and decoded JSON of a request to the provider; unreachable or non-JSON answers are errors."""
    request = HTTPRequest(
        url,
        method=method,
        body=body,
        headers={"Accept": "application/json", "User-Agent": "sregistry-jupyter", **(headers or {})},
        connect_timeout=HTTP_TIMEOUT,
        request_timeout=HTTP_TIMEOUT,
    )
    try:
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
    except (OSError, HTTPClientError) as error:
        raise ProviderError(f"could not reach the sign-in provider's {what} at {url}: {error}") from None
    try:
        return response.code, json.loads(response.body or b"")
    except ValueError:
        raise SignInFailed(f"the sign-in provider's {what} answered HTTP {response.code} without JSON") from None


def describe_error(status: int, answer: Any) -> str:
    """A provider's OAuth error (``error``, ``error_description``) in a few words, for the person signing in."""
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        description = answer.get("error_description")
        return f"{answer['error']}: {description}" if isinstance(description, str) else answer["error"]
    return f"HTTP {status}"


class OAuthAuthenticator(Authenticator):
    """The authorization-code flow with state and PKCE; subclasses say where the provider's endpoints are
    and how to read the signed-in user."""

    client_id = Unicode("", config=True, help="The registry's client ID at the provider.")
    client_secret = Unicode(
        "", config=True, help=f"The registry's client secret at the provider; default ${SECRET_ENV}."
    )
    callback_url = Unicode(
        "",
        config=True,
        help=f"The redirect URI registered at the provider; default the registry's URL + {CALLBACK_PATH}.",
    )
    scope = Unicode("", config=True, help="Space-separated scopes to ask the provider for.")
    allowed_users = Set(Unicode(), config=True, help="If set, only these users may sign in.")

    @default("client_secret")
    def _client_secret_default(self) -> str:
        return os.environ.get(SECRET_ENV, "")

    def routes(self) -> list[tuple[Any, ...]]:
        callback_path = urlsplit(self.callback_url).path or CALLBACK_PATH
        return [
            (r"/login", OAuthLoginHandler, {"authenticator": self}),
            (re.escape(callback_path), OAuthCallbackHandler, {"authenticator": self}),
        ]

    def identity_provider(self) -> str:
        """The ``provider`` under which identities from this authenticator are linked to users."""
        raise NotImplementedError

    async def authorize_endpoint(self) -> str:
        raise NotImplementedError

    async def token_endpoint(self) -> str:
        raise NotImplementedError

    async def uses_basic_auth(self) -> bool:
        """Whether the token endpoint takes the client credentials as HTTP Basic rather than in the form."""
        return False

    async def identify(self, grant: dict[str, Any], flow: Flow) -> OutsideIdentity:
        """Who signed in, asked of the provider with the token response; refuses users not allowed in."""
        raise NotImplementedError

    def requested_scope(self) -> str:
        return self.scope

    def extra_authorize_params(self, flow: Flow) -> dict[str, str]:
        return {}

    def redirect_uri(self, handler: BaseHandler) -> str:
        if self.callback_url:
            return self.callback_url
        base = handler.registry.public_url or f"{handler.request.protocol}://{handler.request.host}"
        return base.rstrip("/") + CALLBACK_PATH

    async def authorization_redirect(self, handler: BaseHandler, flow: Flow) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri(handler),
            "scope": self.requested_scope(),
            "state": flow.state,
            "code_challenge": flow.challenge,
            "code_challenge_method": "S256",
            **self.extra_authorize_params(flow),
        }
        url = await self.authorize_endpoint()
        return url + ("&" if "?" in url else "?") + urlencode(params)

    async def exchange_code(self, handler: BaseHandler, code: str, flow: Flow) -> dict[str, Any]:
        """The provider's token response for ``code``; a refusal (HTTP error or an ``error`` field) fails."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri(handler),
            "code_verifier": flow.verifier,
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.client_secret and await self.uses_basic_auth():
            credentials = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
        else:
            form["client_id"] = self.client_id
            if self.client_secret:
                form["client_secret"] = self.client_secret
        status, answer = await fetch_json(
            await self.token_endpoint(), what="token endpoint", method="POST", body=urlencode(form), headers=headers
        )
        if status != 200 or not isinstance(answer, dict) or "error" in answer or "access_token" not in answer:
            raise SignInFailed(f"the sign-in provider refused the sign-in code ({describe_error(status, answer)})")
        return answer

    async def fetch_with_token(self, url: str, grant: dict[str, Any], what: str) -> Any:
        headers = {"Authorization": f"Bearer {grant['access_token']}"}
        status, answer = await fetch_json(url, what=what, headers=headers)
        if status != 200:
            raise SignInFailed(f"the sign-in provider's {what} refused the access ({describe_error(status, answer)})")
        return answer


class GitHubAuthenticator(OAuthAuthenticator):
    """Sign-in with GitHub, or GitHub Enterprise with the URLs pointed at it."""

    authorize_url = Unicode(
        "https://github.com/login/oauth/authorize", config=True, help="GitHub's authorization page."
    )
    token_url = Unicode("https://github.com/login/oauth/access_token", config=True, help="GitHub's token endpoint.")
    user_url = Unicode("https://api.github.com/user", config=True, help="The API naming the signed-in user.")
    orgs_url = Unicode(
        "https://api.github.com/user/orgs", config=True, help="The API listing the signed-in user's organizations."
    )
    allowed_organizations = Set(
        Unicode(), config=True, help="If set, members of these organizations may sign in (besides allowed_users)."
    )

    @default("login_service")
    def _login_service_default(self) -> str:
        return "GitHub"

    def identity_provider(self) -> str:
        return "github"

    async def authorize_endpoint(self) -> str:
        return self.authorize_url

    async def token_endpoint(self) -> str:
        return self.token_url

    def requested_scope(self) -> str:
        """The configured scopes, plus ``read:org`` when membership decides who may sign in."""
        scopes = self.scope.split()
        if self.allowed_organizations and "read:org" not in scopes:
            scopes.append("read:org")
        return " ".join(scopes)

    async def identify(self, grant: dict[str, Any], flow: Flow) -> OutsideIdentity:
        user = await self.fetch_with_token(self.user_url, grant, "user API")
        if not isinstance(user, dict) or type(user.get("id")) is not int or not isinstance(user.get("login"), str):
            raise SignInFailed("GitHub's user API did not name the signed-in user")
        await self.check_allowed(user["login"], grant)
        email = user.get("email")
        return OutsideIdentity(str(user["id"]), user["login"], email if isinstance(email, str) else None)

    async def check_allowed(self, login: str, grant: dict[str, Any]) -> None:
        """GitHub logins are case-insensitive, and so are the allow-lists."""
        if not self.allowed_users and not self.allowed_organizations:
            return
        if login.lower() in {name.lower() for name in self.allowed_users}:
            return
        if self.allowed_organizations and await self.in_allowed_organization(grant):
            return
        raise SignInFailed(f"the GitHub user {login!r} is not allowed to sign in to this registry")

    async def in_allowed_organization(self, grant: dict[str, Any]) -> bool:
        orgs = await self.fetch_with_token(self.orgs_url + "?per_page=100", grant, "organizations API")
        names = {org["login"].lower() for org in orgs if isinstance(org, dict) and isinstance(org.get("login"), str)}
        return bool(names & {name.lower() for name in self.allowed_organizations})


class OIDCAuthenticator(OAuthAuthenticator):
    """Sign-in with any OpenID Connect provider, configured from its discovery document."""

    issuer = Unicode(
        "", config=True, help="The issuer URL; its discovery document is <issuer>/.well-known/openid-configuration."
    )
    username_claim = Unicode(
        "preferred_username", config=True, help="The claim that names the user; 'sub' when it is absent."
    )
    _discovery: dict[str, Any] | None = None

    @default("scope")
    def _scope_default(self) -> str:
        return "openid profile email"

    @default("login_service")
    def _login_service_default(self) -> str:
        return "OpenID Connect"

    def identity_provider(self) -> str:
        """Subjects are unique per issuer only, so the issuer is part of the key (hashed to fit the column)."""
        return "oidc:" + hashlib.sha256(self.issuer.rstrip("/").encode()).hexdigest()[:16]

    async def discovery(self) -> dict[str, Any]:
        """The issuer's discovery document, fetched on first use and kept; a failed fetch is retried later."""
        if self._discovery is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            status, document = await fetch_json(url, what="discovery document")
            required = ("issuer", "authorization_endpoint", "token_endpoint")
            if (
                status != 200
                or not isinstance(document, dict)
                or not all(isinstance(document.get(key), str) for key in required)
            ):
                raise ProviderError(f"no usable OpenID Connect discovery document at {url} (HTTP {status})")
            if document["issuer"].rstrip("/") != self.issuer.rstrip("/"):
                raise ProviderError(f"the discovery document at {url} is for another issuer: {document['issuer']}")
            self._discovery = document
        return self._discovery

    async def authorize_endpoint(self) -> str:
        return (await self.discovery())["authorization_endpoint"]

    async def token_endpoint(self) -> str:
        return (await self.discovery())["token_endpoint"]

    async def uses_basic_auth(self) -> bool:
        methods = (await self.discovery()).get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
        return "client_secret_basic" in methods

    def extra_authorize_params(self, flow: Flow) -> dict[str, str]:
        return {"nonce": flow.nonce}

    async def identify(self, grant: dict[str, Any], flow: Flow) -> OutsideIdentity:
        document = await self.discovery()
        claims = self.id_token_claims(grant, flow, document["issuer"])
        userinfo_url = document.get("userinfo_endpoint")
        if isinstance(userinfo_url, str):
            userinfo = await self.fetch_with_token(userinfo_url, grant, "userinfo endpoint")
            if not isinstance(userinfo, dict) or userinfo.get("sub") != claims["sub"]:
                raise SignInFailed("the provider's userinfo endpoint describes another user than its ID token")
            claims = {**claims, **userinfo}
        username = claims.get(self.username_claim)
        if not isinstance(username, str) or not username.strip():
            username = claims["sub"]
        if self.allowed_users and username not in self.allowed_users:
            raise SignInFailed(f"the user {username!r} is not allowed to sign in to this registry")
        email = claims.get("email")
        return OutsideIdentity(claims["sub"], username, email if isinstance(email, str) else None)

    def id_token_claims(self, grant: dict[str, Any], flow: Flow, issuer: str) -> dict[str, Any]:
        """The ID token's claims, checked to be for this client, this sign-in (the nonce) and still valid.

        Its signature is not checked: the token came straight from the token endpoint over the connection
        the registry opened, which OpenID Connect Core (3.1.3.7) accepts as proof of its origin.
        """
        id_token = grant.get("id_token")
        if not isinstance(id_token, str):
            raise SignInFailed("the provider returned no ID token; is 'openid' in the scope?")
        claims = jwt_claims(id_token)
        problem = id_token_problem(claims, issuer, self.client_id, flow.nonce)
        if problem:
            raise SignInFailed(f"the provider's ID token does not belong to this sign-in: {problem}")
        return claims


def id_token_problem(claims: dict[str, Any], issuer: str, client_id: str, nonce: str) -> str | None:
    """What makes an ID token unfit for this sign-in, or None."""
    audience = claims.get("aud")
    expires = claims.get("exp")
    if claims.get("iss") != issuer:
        return "its issuer differs"
    if client_id not in (audience if isinstance(audience, list) else [audience]):
        return "it is for another client"
    if claims.get("nonce") != nonce:
        return "its nonce differs"
    if not isinstance(expires, int | float) or expires + ID_TOKEN_LEEWAY < time.time():
        return "it has expired"
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        return "it names no subject"
    return None


class OAuthHandler(PageHandler):
    """The flow's handlers are pages, so a failed sign-in shows the person a page saying why; they run
    before the terms are accepted, since signing in is how one gets to them."""

    allowed_before_terms = True

    def initialize(self, authenticator: OAuthAuthenticator) -> None:
        self.authenticator = authenticator


class OAuthLoginHandler(OAuthHandler):
    async def get(self) -> None:
        flow = Flow.start(return_path(self.get_argument("next", "/")))
        url = await self.authenticator.authorization_redirect(self, flow)
        remember_flow(self, FLOW_COOKIE, flow)
        self.redirect(url)


class OAuthCallbackHandler(OAuthHandler):
    async def get(self) -> None:
        self.check_provider_error()
        flow = take_flow(
            self, FLOW_COOKIE, "this sign-in answer is not for the sign-in started in this browser; sign in again"
        )
        code = self.get_argument("code", "")
        if not code:
            raise InvalidInput("the sign-in provider sent no code")
        grant = await self.authenticator.exchange_code(self, code, flow)
        identity = await self.authenticator.identify(grant, flow)
        person = await self.write_db(sign_in_identity, self.authenticator.identity_provider(), identity)
        await self.complete_sign_in(person, flow.next_url)

    def check_provider_error(self) -> None:
        """A refusal from the provider ends the sign-in whatever its state: it signs nobody in, and some
        providers leave the state off their error redirects."""
        error = self.get_argument("error", "")
        if error:
            description = self.get_argument("error_description", "")
            raise SignInFailed(
                f"the sign-in provider did not sign you in ({': '.join(filter(None, (error, description)))})"
            )


def sign_in_identity(session: Session, provider: str, identity: OutsideIdentity) -> Identity:
    """The registry user linked to the provider's identity, created on first sign-in."""
    user = sessions.sign_in(session, provider, identity.subject, identity.username, email=identity.email)
    if user.disabled_at is not None:
        raise SignInFailed(f"the registry account {user.name!r} is disabled; ask the registry's staff")
    return Identity.of(user)
