"""What every HTML page shares: sessions only (never API tokens), the form XSRF check, the layout's
template namespace, and errors rendered as pages.

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

from ...access import ANONYMOUS, Identity, Principal, StaffAction, decide_staff
from ...auth import sessions
from ...errors import Forbidden, InvalidInput
from ..base import BaseHandler, storable
from ..security import set_page_headers
from . import wording

SAFE_METHODS = frozenset({"GET", "HEAD"})
ERROR_TITLES = {400: "That did not work", 403: "Not allowed", 404: "Not found", 405: "Not allowed here"}
# The main navigation: (link, label, section); a page's section is the first segment of its path.
NAV_LINKS = (
    ("/collections", "Collections", "collections"),
    ("/teams", "Teams", "teams"),
    ("/plots", "Usage", "plots"),
    ("/api", "API", "api"),
    ("/help", "Docs", "help"),
)


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


def sregistry_config(base: str, username: str, token: str | None) -> str:
    """The ``~/.sregistry`` file sregistry-cli reads, with the new token when there is one."""
    value = {
        "SREGISTRY_CLIENT": "registry",
        "registry": {"base": base, "username": username, "token": token or "<paste your token>"},
    }
    return json.dumps(value, indent=2)


class PageHandler(BaseHandler):
    """Base of every HTML page. Forms are handled in ``submit``, which runs only after ``post`` has checked
    the form's ``_xsrf`` value, so no page can forget the check."""

    checks_xsrf_in_form = True
    _form: dict[str, str] | None = None

    def set_default_headers(self) -> None:
        super().set_default_headers()
        set_page_headers(self)

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
            nav_links=NAV_LINKS,
            section=self.request.path.strip("/").split("/")[0],
            search_query=self.get_query_argument("q", "") if self.request.path == "/collections" else "",
            human_size=wording.human_size,
            ago=wording.ago,
            until=wording.until,
            stamp=wording.stamp,
            short_digest=wording.short_digest,
            plural=wording.plural,
            may_staff=decide_staff(self.principal, StaffAction.LIST_USERS),
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

    def page_number(self) -> int:
        """The ``page`` query argument; anything but a positive number is the first page."""
        raw = self.get_query_argument("page", "1")
        return max(1, min(int(raw), 1_000_000)) if raw.isdigit() else 1

    def send_error_body(self, status: int, code: str, message: str) -> None:
        """Errors are pages too."""
        title = ERROR_TITLES.get(status, "Something went wrong")
        self.render("error.html", status=status, title=title, message=message)
