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
from sqlalchemy.orm import Session

from ..access import Identity, Principal
from ..handlers.pages.base import PageHandler, safe_next
from ..orm import User
from ..services import audit
from . import passwords, sessions
from .base import Authenticator

SIGN_IN_FAILED = "Wrong user name or password."


async def off_loop(function: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


def password_account(session: Session, username: str) -> tuple[Identity, str | None] | None:
    """The person who may sign in as ``username`` with a password, and their stored hash."""
    user = session.scalar(select(User).where(User.name == username.strip())) if username.strip() else None
    if user is None or user.is_robot or user.disabled_at is not None:
        return None
    return Identity.of(user), user.password_hash


def set_password_hash(session: Session, user_id: int, hashed: str, *, end_sessions: bool = False) -> None:
    user = session.get(User, user_id)
    if user is not None:
        user.password_hash = hashed
        if end_sessions:
            user.session_epoch += 1


async def check_credentials(handler: PageHandler, username: str, password: str) -> Identity | None:
    """The person these credentials belong to, or None; the stored hash is upgraded when it is outdated."""
    account = await handler.read_db(password_account, username)
    hashed = account[1] if account is not None else None
    if not await off_loop(passwords.verify_password, hashed, password) or account is None or hashed is None:
        return None
    if passwords.needs_rehash(hashed):
        await handler.write_db(set_password_hash, account[0].id, await off_loop(passwords.hash_password, password))
    return account[0]


def record_failed_sign_in(session: Session, username: str, remote_addr: str) -> None:
    audit.record(session, "user.sign-in-failed", None, remote_addr=remote_addr, detail={"user": username[:64]})


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
        identity = await check_credentials(self, username, form.get("password", ""))
        if identity is None:
            await self.write_db(record_failed_sign_in, username, self.remote_addr)
            self.show(next_url, username=username, error=SIGN_IN_FAILED, status=403)
            return
        await self.complete_sign_in(identity, next_url)


def stored_hash(session: Session, user_id: int) -> str | None:
    user = session.get(User, user_id)
    return user.password_hash if user is not None else None


def change_password(session: Session, principal: Principal, hashed: str, remote_addr: str) -> None:
    """Set a new password and end every session of the person's (the caller starts a new one)."""
    assert principal.user is not None
    set_password_hash(session, principal.user.id, hashed, end_sessions=True)
    audit.record(session, "user.set-password", principal, remote_addr=remote_addr)


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
        hashed = await self.read_db(stored_hash, user.id)
        if not await off_loop(passwords.verify_password, hashed, current):
            self.show(error="The current password is wrong.", status=403)
            return
        problem = passwords.password_problem(new, form.get("repeat", ""))
        if problem:
            self.show(error=problem[0].upper() + problem[1:] + ".", status=400)
            return
        hashed_new = await off_loop(passwords.hash_password, new)
        await self.write_db(change_password, self.principal, hashed_new, self.remote_addr)
        key = await self.write_db(sessions.create_session, user.id)
        sessions.set_session_cookie(self, key)
        self.show(done=True)


class LocalAuthenticator(Authenticator):
    """Accounts with passwords kept by the registry itself."""

    password_url = "/account/password"

    def routes(self) -> list[tuple[Any, ...]]:
        return [(r"/login", LoginHandler), (self.password_url, PasswordHandler)]
