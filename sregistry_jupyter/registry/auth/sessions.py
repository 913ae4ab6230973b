"""Browser sessions and the XSRF check that goes with them.

A session is a signed cookie naming the user and their session epoch; bumping the epoch (sign out
everywhere, an admin disabling the account) ends every session at once. Requests that a browser
authenticates with that cookie must also prove they come from the registry's own pages: state-changing
requests carry the ``_xsrf`` cookie's value back in a form field or an ``X-XSRF-Token`` header, which
another site cannot read.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import Forbidden
from ..orm import User, UserIdentity
from ..services import users

if TYPE_CHECKING:
    from ..handlers.base import BaseHandler

SESSION_COOKIE = "sregistry-session"
XSRF_COOKIE = "_xsrf"
XSRF_HEADER = "X-XSRF-Token"
SESSION_DAYS = 14
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def start_session(handler: BaseHandler, user: User) -> None:
    handler.set_signed_cookie(
        SESSION_COOKIE,
        f"{user.id}:{user.session_epoch}",
        expires_days=SESSION_DAYS,
        httponly=True,
        secure=handler.request.protocol == "https",
        samesite="Lax",
    )


def end_session(handler: BaseHandler) -> None:
    handler.clear_cookie(SESSION_COOKIE)


def session_user(handler: BaseHandler) -> User | None:
    """The user whose valid session cookie came with the request, if any."""
    raw = handler.get_signed_cookie(SESSION_COOKIE, max_age_days=SESSION_DAYS)
    if not raw:
        return None
    user_id, _, epoch = raw.decode(errors="replace").partition(":")
    if not user_id.isdigit() or not epoch.isdigit():
        return None
    user = handler.db.get(User, int(user_id))
    if user is None or user.is_robot or user.session_epoch != int(epoch):
        return None
    return user


def xsrf_value(handler: BaseHandler) -> str:
    """The value forms and scripts send back; created (as a cookie) on first use."""
    value = handler.get_cookie(XSRF_COOKIE)
    if not value:
        value = secrets.token_urlsafe(24)
        handler.set_cookie(XSRF_COOKIE, value, samesite="Strict", secure=handler.request.protocol == "https")
    return value


def check_xsrf(handler: BaseHandler, sent: str | None) -> None:
    expected = handler.get_cookie(XSRF_COOKIE)
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise Forbidden("this form has expired or did not come from this registry; reload the page and retry")


def sign_in(
    session: Session,
    provider: str,
    subject: str,
    username: str,
    *,
    email: str | None = None,
    trust_username: bool = False,
) -> User:
    """The user linked to ``provider``/``subject``, created on first sign-in with ``username``.

    A new identity whose user name is already taken by another account gets a numbered name instead
    of taking over that account, unless the provider is the authority for user names (``trust_username``:
    JupyterHub, whose users are the registry's users).
    """
    link = session.scalar(
        select(UserIdentity).where(UserIdentity.provider == provider, UserIdentity.subject == subject)
    )
    if link is not None:
        user = session.get(User, link.user_id)
        if user is not None:
            return user
    existing = session.scalar(select(User).where(User.name == users.normalise_name(username)))
    if trust_username and existing is not None:
        session.add(UserIdentity(user_id=existing.id, provider=provider, subject=subject))
        session.flush()
        return existing
    user = users.create_user(session, users.available_name(session, username))
    user.email = email
    session.add(UserIdentity(user_id=user.id, provider=provider, subject=subject))
    session.flush()
    return user
