"""HTML pages of the web interface.

Pages know a person only by their session cookie, never by an API token, so a token leaked into a
browser cannot drive the pages. Every form posts a hidden ``_xsrf`` field that must match the
``_xsrf`` cookie; a page refuses the form before doing anything else when it does not. Pages work
without JavaScript: every action is a plain form, and errors are rendered as pages, not JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy.orm import Session
from tornado import web
from tornado.httputil import parse_body_arguments

from ..access import ANONYMOUS, Identity, Principal, team_role
from ..auth import sessions
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..names import row_id
from ..orm import Team, User, utcnow
from ..services import audit, collections, teams, users
from ..tokens import SCOPES
from .base import BaseHandler, storable

SAFE_METHODS = frozenset({"GET", "HEAD"})
ERROR_TITLES = {400: "That did not work", 403: "Not allowed", 404: "Not found", 405: "Not allowed here"}


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go to after a form, so that a crafted link cannot send a person to another site.

    Browsers read ``//host`` and ``/\\host`` as other hosts and drop tabs and newlines inside URLs, so
    anything but a plain absolute path on this registry falls back to ``default``.
    """
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return default
    parts = urlsplit(value)
    return default if parts.scheme or parts.netloc else value


def terms_url(next_url: str) -> str:
    return "/terms?" + urlencode({"next": next_url})


def remote_name(registry_name: str) -> str:
    """The name suggested for this registry in ``apptainer remote add``."""
    return "-".join(registry_name.lower().split()) or "registry"


class PageHandler(BaseHandler):
    """Base of every HTML page. Forms are handled in ``submit``, which runs only after ``post`` has checked
    the form's ``_xsrf`` value, so no page can forget the check."""

    checks_xsrf_in_form = True
    _form: dict[str, str] | None = None

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
        self.set_header("X-Frame-Options", "DENY")

    async def identify(self) -> Principal | None:
        """Pages know a person only by their browser session, never by an API token."""
        return await self.session_principal() or ANONYMOUS

    def check_terms(self, principal: Principal) -> None:
        """A person who has not accepted the terms is sent to them, and comes back here afterwards."""
        try:
            super().check_terms(principal)
        except Forbidden:
            if self.request.method not in SAFE_METHODS:
                raise
            # Answered before Tornado has finished reading the request, so it will close the connection.
            self.set_header("Connection", "close")
            self.redirect(terms_url(safe_next(self.request.uri)))
            raise web.Finish() from None

    def sign_in_url(self, next_url: str) -> str | None:
        authenticator = self.registry.authenticator
        return authenticator.login_url(next_url) if authenticator is not None else None

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        here = "/" if self.request.path in ("/login", "/logout") else safe_next(self.request.uri)
        namespace.update(
            registry=self.registry,
            user=self.principal.user,
            xsrf=sessions.xsrf_value(self),
            login_url=self.sign_in_url(here),
            password_url=getattr(self.registry.authenticator, "password_url", None),
        )
        return namespace

    def require_person(self) -> Identity:
        """The signed-in person; anyone else is sent to sign in and brought back here."""
        user = self.principal.user
        if user is not None:
            return user
        login = self.sign_in_url(safe_next(self.request.uri))
        if login is None or self.request.method not in SAFE_METHODS:
            raise Forbidden("sign in first")
        self.redirect(login)
        raise web.Finish()

    async def complete_sign_in(self, identity: Identity, next_url: str) -> None:
        """End any sign-in flow: record it, start a session on the server and in this browser, and go on to
        ``next_url`` (by way of the terms of service until the person has accepted them)."""
        key = await self.write_db(sessions.record_sign_in, identity, self.remote_addr)
        sessions.set_session_cookie(self, key)
        if self.registry.terms_of_service and not identity.is_robot and not identity.terms_accepted:
            next_url = terms_url(next_url)
        self.redirect(next_url, status=303 if self.request.method == "POST" else 302)

    def form(self) -> dict[str, str]:
        """The posted form's fields (first value of each), decoded; refused if a database could not store it."""
        if self._form is None:
            arguments: dict[str, list[bytes]] = {}
            content_type = self.request.headers.get("Content-Type", "")
            parse_body_arguments(content_type, bytes(self._body), arguments, {}, self.request.headers)
            try:
                form = {name: values[0].decode() for name, values in arguments.items() if values}
            except UnicodeDecodeError:
                raise InvalidInput("the form is not valid UTF-8") from None
            if not storable(form):
                raise InvalidInput("the form may not contain NUL characters")
            self._form = form
        return self._form

    async def post(self, *args: str) -> None:
        form = self.form()
        sessions.check_xsrf(self, form.get(sessions.XSRF_FIELD))
        await self.submit(form, *args)

    async def submit(self, form: dict[str, str], *args: str) -> None:
        """Handle a form whose XSRF value has been checked; pages without forms refuse posts."""
        raise web.HTTPError(405)

    def send_error_body(self, status: int, code: str, message: str) -> None:
        """Errors are pages too."""
        title = ERROR_TITLES.get(status, "Something went wrong")
        self.render("error.html", status=status, title=title, message=message)


class HomeHandler(PageHandler):
    async def get(self) -> None:
        recent, total = await self.read_db(collections.list_collections, self.principal, sort="-updated", limit=10)
        remote = remote_name(self.registry.name)
        self.render("home.html", recent=recent, total=total, base=self.base_url(), remote=remote)


def accepted_at(session: Session, user_id: int) -> dt.datetime | None:
    user = session.get(User, user_id)
    return user.terms_accepted_at if user is not None else None


def accept_terms(session: Session, principal: Principal, remote_addr: str) -> None:
    """Record that the person accepted the terms of service (once)."""
    assert principal.user is not None
    user = session.get(User, principal.user.id)
    if user is not None and user.terms_accepted_at is None:
        user.terms_accepted_at = utcnow()
        audit.record(session, "user.accept-terms", principal, remote_addr=remote_addr)


class TermsHandler(PageHandler):
    """The terms of service, and the one form a person can use before accepting them."""

    allowed_before_terms = True

    async def get(self) -> None:
        text = self.registry.terms_of_service
        user = self.principal.user
        self.render(
            "terms.html",
            paragraphs=[part.strip() for part in text.split("\n\n") if part.strip()],
            accepted_at=await self.read_db(accepted_at, user.id) if user else None,
            next_url=safe_next(self.get_query_argument("next", None)),
        )

    async def submit(self, form: dict[str, str]) -> None:
        self.require_person()
        await self.write_db(accept_terms, self.principal, self.remote_addr)
        self.redirect(safe_next(form.get("next")), status=303)


def sign_out(session: Session, principal: Principal, key: str | None, everywhere: bool, remote_addr: str) -> None:
    """End this browser's session on the server, or every session of the person."""
    if key is not None:
        sessions.delete_session(session, key)
    if principal.user is None:
        return
    if everywhere:
        user = session.get(User, principal.user.id)
        if user is not None:
            user.session_epoch += 1
    audit.record(session, "user.sign-out", principal, remote_addr=remote_addr, detail={"everywhere": everywhere})


class LogoutHandler(PageHandler):
    """Ends the browser's session; any authenticator's sessions end the same way."""

    allowed_before_terms = True

    def get(self) -> None:
        self.render("logout.html")

    async def submit(self, form: dict[str, str]) -> None:
        await self.write_db(sign_out, self.principal, self.session_key, bool(form.get("everywhere")), self.remote_addr)
        sessions.end_session(self)
        self.redirect("/", status=303)


class TokensHandler(PageHandler):
    """A person's API tokens: list, create (the token is shown once, on the answer to the form), revoke."""

    async def get(self) -> None:
        await self.show(self.require_person())

    async def show(
        self, user: Identity, *, token: str | None = None, error: str | None = None, status: int = 200
    ) -> None:
        base = self.base_url()
        self.set_status(status)
        self.render(
            "tokens.html",
            tokens=await self.read_db(users.list_tokens, user),
            live=users.token_is_live,
            scopes=SCOPES,
            new_token=token,
            error=error,
            base=base,
            remote=remote_name(self.registry.name),
            sregistry_json=sregistry_config(base, user.name, token),
        )

    async def submit(self, form: dict[str, str]) -> None:
        user = self.require_person()
        try:
            _, token = await self.write_db(
                users.create_token,
                user,
                self.registry.secret_key,
                name=form.get("name", ""),
                scope=form.get("scope", "read"),
                expires_in_days=expiry_days(form.get("expires_in_days", "")),
            )
        except InvalidInput as error:
            await self.show(user, error=error.message, status=400)
            return
        await self.show(user, token=token)


class RevokeTokenHandler(PageHandler):
    async def submit(self, form: dict[str, str], token_id: str) -> None:
        self.require_person()
        await self.write_db(users.revoke_token, self.principal, row_id(token_id, "token"))
        self.redirect("/tokens", status=303)


def invitation_state(session: Session, principal: Principal, code: str) -> tuple[Team, bool]:
    """The team an invitation leads to, and whether the person is already in it."""
    team = teams.invitation_preview(session, code)
    return team, team_role(session, principal.user, team) is not None


class InvitationHandler(PageHandler):
    """The landing page of an invitation link: which team it is for, and a button to join it."""

    REFUSALS = (NotFound, InvalidInput, Forbidden, Conflict)

    async def get(self, code: str) -> None:
        self.require_person()
        try:
            team, member = await self.read_db(invitation_state, self.principal, code)
        except self.REFUSALS as error:
            self.show(error=error.message, status=error.status)
            return
        self.show(team=team, member=member)

    async def submit(self, form: dict[str, str], code: str) -> None:
        self.require_person()
        try:
            team = await self.write_db(teams.accept_invitation, self.principal, code)
        except self.REFUSALS as error:
            self.show(error=error.message, status=error.status)
            return
        self.show(team=team, joined=True)

    def show(
        self,
        *,
        team: Team | None = None,
        member: bool = False,
        joined: bool = False,
        error: str | None = None,
        status: int = 200,
    ) -> None:
        self.set_status(status)
        self.render("invitation.html", team=team, member=member, joined=joined, error=error)


def expiry_days(raw: str) -> float | None:
    """Days from the form's expiry field; empty means the token never expires."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput(f"the expiry is a number of days, not {raw!r}") from None


def sregistry_config(base: str, username: str, token: str | None) -> str:
    """The ``~/.sregistry`` file sregistry-cli reads, with the new token when there is one."""
    value = {
        "SREGISTRY_CLIENT": "registry",
        "registry": {"base": base, "username": username, "token": token or "<paste your token>"},
    }
    return json.dumps(value, indent=2)


def routes() -> list[tuple[str, type]]:
    return [
        (r"/", HomeHandler),
        (r"/terms", TermsHandler),
        (r"/logout", LogoutHandler),
        (r"/tokens", TokensHandler),
        (r"/tokens/(\d+)/revoke", RevokeTokenHandler),
        (r"/invitations/([^/]+)", InvitationHandler),
    ]
