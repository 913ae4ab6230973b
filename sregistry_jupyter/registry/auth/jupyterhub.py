"""Single sign-on through JupyterHub: the registry as a hub service on its own URL.

The registry is an external OAuth client of the hub (``server/jupyterhub_config.py`` declares it), and
JupyterHub's ``HubOAuth`` speaks the hub's side of the protocol: the URLs, the code exchange and
``GET /hub/api/user``, whose answers it caches (``HubOAuth.cache_max_age``, five minutes by default, so
a revoked hub token may keep working that long).

Browsers: ``/login`` sends the browser to the hub's authorization page with a random state and a PKCE
challenge, kept with the page to come back to in a short-lived signed cookie of that browser rather than
in process memory as HubOAuth's own helpers keep it, so that the callback may reach another registry
process behind the same proxy. ``/oauth_callback`` takes a code only together with that state, redeems it
and starts a registry session for the hub user.

API clients: a hub API token, such as the one every single-user server has, stands for its hub user if
it carries the service's access scope (``access:services!service=<name>``, or ``access:services``). It
is checked by asking the hub asynchronously, for at most ``timeout`` seconds, so a slow or absent hub
delays only the requests that carry hub tokens. Such a request may do what its person may do in the
web pages (``token_scope``, ``admin`` by default; sites may lower it), except managing registry tokens,
which stays in the browser (see ``access.may_manage_tokens``).

Hub users are the registry's users: a hub user is linked to the registry user of the same name, and a
hub admin becomes a registry admin (``admin_from_hub``). jupyterhub is imported only when this
authenticator is used, so a registry without a hub does not need it installed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from tornado import web
from traitlets import Bool, Enum, Float, Unicode, default

from ..access import Identity, Principal, Via
from ..errors import Conflict, Forbidden, InvalidInput, RegistryError, SignInFailed
from ..handlers.base import BaseHandler
from ..handlers.pages.base import PageHandler
from ..orm import User, UserIdentity
from ..tokens import SCOPES
from . import sessions
from .base import Authenticator
from .flow import Flow, remember_flow, return_path, take_flow

if TYPE_CHECKING:
    from jupyterhub.services.auth import HubOAuth

PROVIDER = "jupyterhub"
CALLBACK_PATH = "/oauth_callback"
FLOW_COOKIE = "sregistry-hub-flow"

T = TypeVar("T")


class HubUnavailable(RegistryError):
    """The hub could not be asked who a token belongs to."""

    status = 502
    code = "HUB_ERROR"


def hub_failure(error: web.HTTPError) -> RegistryError:
    """HubOAuth reports both a refusal by the hub and an unreachable hub as HTTPError; tell them apart."""
    message = error.log_message or "no reason given"
    if message.startswith("Failed to check authorization"):
        return SignInFailed(f"JupyterHub refused the sign-in ({message})")
    return HubUnavailable(f"JupyterHub could not be asked: {message}")


class HubAuthenticator(Authenticator):
    """Sign-in through JupyterHub's OAuth, and hub API tokens accepted as credentials.

    Every setting defaults to the environment variable JupyterHub gives the services it starts, so
    the registry can be configured the same way whether the hub starts it or not.
    """

    service_name = Unicode(config=True, help="The registry's service name in the hub; $JUPYTERHUB_SERVICE_NAME.")
    api_url = Unicode(config=True, help="The hub's API as the registry reaches it; $JUPYTERHUB_API_URL.")
    api_token = Unicode(
        config=True, help="The service's API token, also its OAuth client secret; $JUPYTERHUB_API_TOKEN."
    )
    client_id = Unicode(
        config=True, help="The service's OAuth client ID; $JUPYTERHUB_CLIENT_ID, else service-<service_name>."
    )
    callback_url = Unicode(
        config=True,
        help="The service's oauth_redirect_uri in the hub; $JUPYTERHUB_OAUTH_CALLBACK_URL, "
        f"else RegistryApp.public_url + {CALLBACK_PATH}.",
    )
    hub_public_url = Unicode(
        config=True,
        help="The hub as browsers reach it, with its /hub/ prefix (https://hub.example.org/hub/); "
        "$JUPYTERHUB_PUBLIC_HUB_URL, else derived from api_url.",
    )
    timeout = Float(10.0, config=True, help="Seconds to wait for the hub's answer about a token or a sign-in.")
    admin_from_hub = Bool(True, config=True, help="Whether hub admins become registry admins when they sign in.")
    token_scope = Enum(
        list(SCOPES),
        "admin",
        config=True,
        help="What a hub API token with the service's access scope may do: 'admin' lets a person's own "
        "notebook server do what they can do in the web pages (share, manage members and teams, delete), "
        "apart from managing registry tokens; 'write' or 'read' allow less.",
    )

    @default("login_service")
    def _login_service_default(self) -> str:
        return "JupyterHub"

    @default("service_name")
    def _service_name_default(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_NAME") or "sregistry"

    @default("api_url")
    def _api_url_default(self) -> str:
        return os.environ.get("JUPYTERHUB_API_URL") or "http://127.0.0.1:8081/hub/api"

    @default("api_token")
    def _api_token_default(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @default("client_id")
    def _client_id_default(self) -> str:
        return os.environ.get("JUPYTERHUB_CLIENT_ID") or f"service-{self.service_name}"

    @default("callback_url")
    def _callback_url_default(self) -> str:
        public_url = getattr(self.parent, "public_url", "")
        from_app = public_url.rstrip("/") + CALLBACK_PATH if public_url else ""
        return os.environ.get("JUPYTERHUB_OAUTH_CALLBACK_URL") or from_app

    @default("hub_public_url")
    def _hub_public_url_default(self) -> str:
        return os.environ.get("JUPYTERHUB_PUBLIC_HUB_URL") or self.api_url.rstrip("/").removesuffix("api")

    @property
    def access_scope(self) -> str:
        return f"access:services!service={self.service_name}"

    def routes(self) -> list[tuple[Any, ...]]:
        """The sign-in handlers; the hub client is made here, so that a configuration it cannot use stops the start."""
        _ = self.hub_auth
        return [
            (r"/login", HubLoginHandler, {"authenticator": self}),
            (CALLBACK_PATH, HubCallbackHandler, {"authenticator": self}),
        ]

    @cached_property
    def hub_auth(self) -> HubOAuth:
        try:
            from jupyterhub.services.auth import HubOAuth
        except ImportError:
            raise ValueError("HubAuthenticator needs jupyterhub: pip install 'sregistry-jupyter[hub]'") from None
        if not self.api_token:
            raise ValueError("HubAuthenticator needs the service's API token: set $JUPYTERHUB_API_TOKEN")
        if not self.callback_url:
            raise ValueError(
                "HubAuthenticator needs its OAuth callback URL: set RegistryApp.public_url "
                "or $JUPYTERHUB_OAUTH_CALLBACK_URL"
            )
        return HubOAuth(
            parent=self,
            api_url=self.api_url,
            api_token=self.api_token,
            oauth_client_id=self.client_id,
            oauth_redirect_uri=self.callback_url,
            oauth_authorization_url=self.hub_public_url.rstrip("/") + "/api/oauth2/authorize",
            access_scopes={self.access_scope},
        )

    def authorize_url(self, flow: Flow) -> str:
        params = {"state": flow.state, "code_challenge": flow.challenge, "code_challenge_method": "S256"}
        return f"{self.hub_auth.login_url}&{urlencode(params)}"

    async def hub_user(self, token: str) -> dict[str, Any] | None:
        """The hub's model of the user or service owning ``token`` (with the token's scopes), or None."""
        return await self.ask_hub(self.hub_auth.user_for_token(token, sync=False))

    async def token_for_code(self, code: str, verifier: str) -> str:
        return await self.ask_hub(self.hub_auth.token_for_code(code, code_verifier=verifier, sync=False))

    async def ask_hub(self, request: Awaitable[T]) -> T:
        """The answer to a request to the hub, waited for at most ``timeout``; failures as registry errors."""
        try:
            return await asyncio.wait_for(request, self.timeout)
        except TimeoutError:
            raise HubUnavailable(f"JupyterHub did not answer within {self.timeout:g} seconds") from None
        except web.HTTPError as error:
            raise hub_failure(error) from None

    def grants_access(self, model: dict[str, Any] | None) -> bool:
        """Whether ``model`` is a hub user whose token carries this service's access scope."""
        from jupyterhub.services.auth import check_scopes

        if not model or model.get("kind", "user") != "user":
            return False
        return bool(check_scopes({self.access_scope}, set(model.get("scopes", []))))

    async def authenticate_bearer(self, handler: BaseHandler, credential: str) -> Principal | None:
        """The hub user of a hub API token; None if the hub does not know the token (it may be a registry
        token), Forbidden naming the missing scope if it does but the token may not use this registry."""
        model = await self.hub_user(credential)
        if not model:
            return None
        if not self.grants_access(model):
            raise Forbidden(
                f"this JupyterHub token lacks the scope {self.access_scope!r}; ask the hub's administrators "
                "to grant it to users' servers (see the registry's server/README.md)"
            )
        identity = await handler.registry.database.read(linked_identity, model["name"], self.admin_from_hub, model)
        if identity is None:
            identity = await handler.registry.database.write(link_hub_user, model, self.admin_from_hub)
        return Principal(identity, self.token_scope, via=Via.HUB)


def linked_identity(session: Session, name: str, admin_from_hub: bool, model: dict[str, Any]) -> Identity | None:
    """The registry user already linked to hub user ``name``, if nothing about it needs writing."""
    link = session.scalar(
        select(UserIdentity).where(UserIdentity.provider == PROVIDER, UserIdentity.subject == name)
    )
    user = session.get(User, link.user_id) if link is not None else None
    if user is None or (admin_from_hub and model.get("admin") is True and not user.is_admin):
        return None
    check_usable(user)
    return Identity.of(user)


def check_usable(user: User) -> None:
    if user.is_robot:
        raise SignInFailed(f"the registry account {user.name!r} is a robot and cannot be used from the hub")
    if user.disabled_at is not None:
        raise SignInFailed(f"the registry account {user.name!r} is disabled; ask the registry's staff")


def link_hub_user(session: Session, model: dict[str, Any], admin_from_hub: bool) -> Identity:
    """The registry user of the hub user ``model``, created on first use (a hub admin becomes an admin).

    Two registry processes may create the same user at once; the one that loses retries and finds it.
    """
    name = model["name"]
    try:
        user = sessions.sign_in(session, PROVIDER, name, name, trust_username=True)
        session.commit()
    except (IntegrityError, Conflict):
        session.rollback()
        user = sessions.sign_in(session, PROVIDER, name, name, trust_username=True)
    check_usable(user)
    if admin_from_hub and model.get("admin") is True and not user.is_admin:
        user.is_admin = True
    return Identity.of(user)


class HubHandler(PageHandler):
    """The sign-in handlers run before the terms are accepted: signing in is how one gets to them."""

    allowed_before_terms = True

    def initialize(self, authenticator: HubAuthenticator) -> None:
        self.authenticator = authenticator


class HubLoginHandler(HubHandler):
    def get(self) -> None:
        flow = Flow.start(return_path(self.get_argument("next", "/")))
        remember_flow(self, FLOW_COOKIE, flow)
        self.redirect(self.authenticator.authorize_url(flow))


class HubCallbackHandler(HubHandler):
    async def get(self) -> None:
        flow = take_flow(
            self, FLOW_COOKIE, "this answer from JupyterHub is not for the sign-in started in this browser"
        )
        error = self.get_argument("error", "")
        if error:
            raise SignInFailed(f"JupyterHub did not sign you in ({self.get_argument('error_description', error)})")
        code = self.get_argument("code", "")
        if not code:
            raise InvalidInput("JupyterHub sent no code")
        token = await self.authenticator.token_for_code(code, flow.verifier)
        model = await self.authenticator.hub_user(token)
        if not self.authenticator.grants_access(model):
            raise SignInFailed("JupyterHub did not grant access to this registry")
        identity = await self.write_db(link_hub_user, model, self.authenticator.admin_from_hub)
        self.authenticator.log.info("hub user %s signed in as %s", model["name"], identity.name)
        await self.complete_sign_in(identity, flow.next_url)
