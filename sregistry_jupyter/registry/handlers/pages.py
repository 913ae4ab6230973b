"""HTML pages of the web interface.

Pages know a person only by their session cookie, never by an API token, so a token leaked into a
browser cannot drive the pages. Every form posts a hidden ``_xsrf`` field that must match the
``_xsrf`` cookie; a page refuses the form before doing anything else when it does not. Pages work
without JavaScript: every action is a plain form, and errors are rendered as pages, not JSON.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit

from tornado import web
from tornado.httputil import parse_body_arguments

from ..access import ANONYMOUS, Principal, team_role
from ..auth import sessions
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
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

    def credential_principal(self) -> Principal | None:
        return None

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
        principal = self._principal or ANONYMOUS
        here = "/" if self.request.path in ("/login", "/logout") else safe_next(self.request.uri)
        namespace.update(
            registry=self.registry,
            user=principal.user,
            xsrf=sessions.xsrf_value(self),
            login_url=self.sign_in_url(here),
            password_url=getattr(self.registry.authenticator, "password_url", None),
        )
        return namespace

    def require_person(self) -> User:
        """The signed-in person; anyone else is sent to sign in and brought back here."""
        user = self.principal.user
        if user is not None:
            return user
        login = self.sign_in_url(safe_next(self.request.uri))
        if login is None or self.request.method not in SAFE_METHODS:
            raise Forbidden("sign in first")
        self.redirect(login)
        raise web.Finish()

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
        sessions.check_xsrf(self, form.get("_xsrf"))
        await self.submit(form, *args)

    async def submit(self, form: dict[str, str], *args: str) -> None:
        """Handle a form whose XSRF value has been checked; pages without forms refuse posts."""
        raise web.HTTPError(405)

    def send_error_body(self, status: int, code: str, message: str) -> None:
        """Errors are pages too."""
        title = ERROR_TITLES.get(status, "Something went wrong")
        self.render("error.html", status=status, title=title, message=message)


class HomeHandler(PageHandler):
    def get(self) -> None:
        recent, total = collections.list_collections(self.db, self.principal, sort="-updated", limit=10)
        remote = remote_name(self.registry.name)
        self.render("home.html", recent=recent, total=total, base=self.base_url(), remote=remote)


class TermsHandler(PageHandler):
    """The terms of service, and the one form a person can use before accepting them."""

    allowed_before_terms = True

    def get(self) -> None:
        text = self.registry.terms_of_service
        self.render(
            "terms.html",
            paragraphs=[part.strip() for part in text.split("\n\n") if part.strip()],
            next_url=safe_next(self.get_query_argument("next", None)),
        )

    async def submit(self, form: dict[str, str]) -> None:
        user = self.require_person()
        if user.terms_accepted_at is None:
            user.terms_accepted_at = utcnow()
            audit.record(self.db, "user.accept-terms", self.principal, remote_addr=self.remote_addr)
            self.db.commit()
        self.redirect(safe_next(form.get("next")), status=303)


class LogoutHandler(PageHandler):
    """Ends the browser's session; any authenticator's sessions end the same way."""

    allowed_before_terms = True

    def get(self) -> None:
        self.render("logout.html")

    async def submit(self, form: dict[str, str]) -> None:
        user = self.principal.user
        if user is not None:
            if form.get("everywhere"):
                user.session_epoch += 1
            audit.record(self.db, "user.sign-out", self.principal, remote_addr=self.remote_addr)
            self.db.commit()
        sessions.end_session(self)
        self.redirect("/", status=303)


class TokensHandler(PageHandler):
    """A person's API tokens: list, create (the token is shown once, on the answer to the form), revoke."""

    def get(self) -> None:
        self.show(self.require_person())

    def show(self, user: User, *, token: str | None = None, error: str | None = None, status: int = 200) -> None:
        base = self.base_url()
        self.set_status(status)
        self.render(
            "tokens.html",
            tokens=users.list_tokens(self.db, user),
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
            _, token = users.create_token(
                self.db,
                user,
                self.registry.secret_key,
                name=form.get("name", ""),
                scope=form.get("scope", "read"),
                expires_in_days=expiry_days(form.get("expires_in_days", "")),
            )
        except InvalidInput as error:
            self.db.rollback()
            self.show(user, error=error.message, status=400)
            return
        self.db.commit()
        self.show(user, token=token)


class RevokeTokenHandler(PageHandler):
    async def submit(self, form: dict[str, str], token_id: str) -> None:
        self.require_person()
        users.revoke_token(self.db, self.principal, int(token_id))
        self.db.commit()
        self.redirect("/tokens", status=303)


class InvitationHandler(PageHandler):
    """The landing page of an invitation link: which team it is for, and a button to join it."""

    REFUSALS = (NotFound, InvalidInput, Forbidden, Conflict)

    def get(self, code: str) -> None:
        user = self.require_person()
        try:
            team = teams.invitation_preview(self.db, code)
        except self.REFUSALS as error:
            self.show(error=error.message, status=error.status)
            return
        self.show(team=team, member=team_role(self.db, user, team) is not None)

    async def submit(self, form: dict[str, str], code: str) -> None:
        self.require_person()
        try:
            team = teams.accept_invitation(self.db, self.principal, code)
        except self.REFUSALS as error:
            self.db.rollback()
            self.show(error=error.message, status=error.status)
            return
        self.db.commit()
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
