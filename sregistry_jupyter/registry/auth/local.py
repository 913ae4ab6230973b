"""Local accounts, the embedded default: user names and argon2-hashed passwords kept in the registry's
own database, set by staff (``admin set-password``) or by the person on ``/account/password``.

Hashing is deliberately slow, so it runs off the event loop. A failed sign-in says the same thing, and
takes as long, whether the user name is unknown, the password is wrong or the account is a robot (which
never signs in), so the form cannot be used to find out which accounts exist.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from ..access import Principal
from ..handlers.pages import PageHandler, safe_next, terms_url
from ..orm import User
from ..services import audit
from . import passwords, sessions
from .base import Authenticator

SIGN_IN_FAILED = "Wrong user name or password."


async def off_loop(function: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


async def check_credentials(handler: PageHandler, username: str, password: str) -> User | None:
    """The user these credentials belong to, or None; the stored hash is upgraded when it is outdated."""
    user = handler.db.scalar(select(User).where(User.name == username.strip())) if username.strip() else None
    if user is not None and user.is_robot:
        user = None
    hashed = user.password_hash if user is not None else None
    if not await off_loop(passwords.verify_password, hashed, password) or user is None or hashed is None:
        return None
    if passwords.needs_rehash(hashed):
        user.password_hash = await off_loop(passwords.hash_password, password)
    return user


class LoginHandler(PageHandler):
    allowed_before_terms = True

    def get(self) -> None:
        self.show(safe_next(self.get_query_argument("next", None)))

    def show(self, next_url: str, *, username: str = "", error: str | None = None, status: int = 200) -> None:
        self.set_status(status)
        self.render("login.html", next_url=next_url, username=username, error=error)

    async def submit(self, form: dict[str, str]) -> None:
        next_url = safe_next(form.get("next"))
        username = form.get("username", "")
        user = await check_credentials(self, username, form.get("password", ""))
        if user is None:
            detail = {"user": username[:64]}
            audit.record(self.db, "user.sign-in-failed", None, remote_addr=self.remote_addr, detail=detail)
            self.db.commit()
            self.show(next_url, username=username, error=SIGN_IN_FAILED, status=403)
            return
        audit.record(self.db, "user.sign-in", Principal(user), remote_addr=self.remote_addr)
        self.db.commit()
        sessions.start_session(self, user)
        if self.registry.terms_of_service and user.terms_accepted_at is None:
            next_url = terms_url(next_url)
        self.redirect(next_url, status=303)


class PasswordHandler(PageHandler):
    """A signed-in person changes their own password; their other browsers are signed out."""

    def get(self) -> None:
        self.require_person()
        self.show()

    def show(self, *, error: str | None = None, done: bool = False, status: int = 200) -> None:
        self.set_status(status)
        self.render("password.html", error=error, done=done, min_length=passwords.MIN_LENGTH)

    async def submit(self, form: dict[str, str]) -> None:
        user = self.require_person()
        current, new = form.get("current", ""), form.get("new", "")
        if not await off_loop(passwords.verify_password, user.password_hash, current):
            self.show(error="The current password is wrong.", status=403)
            return
        problem = passwords.password_problem(new, form.get("repeat", ""))
        if problem:
            self.show(error=problem[0].upper() + problem[1:] + ".", status=400)
            return
        user.password_hash = await off_loop(passwords.hash_password, new)
        user.session_epoch += 1
        audit.record(self.db, "user.set-password", self.principal, remote_addr=self.remote_addr)
        self.db.commit()
        sessions.start_session(self, user)
        self.show(done=True)


class LocalAuthenticator(Authenticator):
    """Accounts with passwords kept by the registry itself."""

    password_url = "/account/password"

    def routes(self) -> list[tuple[Any, ...]]:
        return [(r"/login", LoginHandler), (self.password_url, PasswordHandler)]
