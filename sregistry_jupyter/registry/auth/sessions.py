"""Browser sessions and the XSRF check that goes with them.

A session is a row on the server (``BrowserSession``) named by the hash of a random key that only the
browser's signed cookie holds. Signing out deletes the row, so a copy of the cookie taken earlier stops
working at once; "sign out everywhere", a new password or an admin disabling the account advance the
user's ``session_epoch``, which every older session row no longer matches.

Requests that a browser authenticates with that cookie must also prove they come from the registry's own
pages: state-changing requests carry an XSRF value back in a form field or an ``X-XSRF-Token`` header.
The value is an HMAC of the session key (or, before signing in, of a random key in a signed cookie of
that browser) under the registry's secret, so it is bound to this browser's session: a value chosen by
another site, or one from another session, does not match.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from ..access import Identity, Principal, Via
from ..errors import Forbidden
from ..orm import BrowserSession, User, UserIdentity, utcnow
from ..services import audit, users

if TYPE_CHECKING:
    from ..handlers.base import BaseHandler

SESSION_COOKIE = "sregistry-session"
ANONYMOUS_COOKIE = "sregistry-visitor"
XSRF_FIELD = "_xsrf"
XSRF_HEADER = "X-XSRF-Token"
SESSION_DAYS = 14
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_session(session: Session, user_id: int) -> str:
    """A new session for the user (a row keyed by the hash of the returned key, which goes in the cookie)."""
    user = session.get(User, user_id)
    if user is None:
        raise Forbidden("this account no longer exists")
    key = secrets.token_urlsafe(32)
    session.add(
        BrowserSession(
            id=key_hash(key),
            user_id=user.id,
            epoch=user.session_epoch,
            expires_at=utcnow() + dt.timedelta(days=SESSION_DAYS),
        )
    )
    expired = delete(BrowserSession).where(BrowserSession.user_id == user.id, BrowserSession.expires_at < utcnow())
    session.execute(expired)
    return key


def record_sign_in(session: Session, identity: Identity, remote_addr: str) -> str:
    """Record a completed sign-in in the audit trail and open a session for it; returns the session's key."""
    audit.record(session, "user.sign-in", Principal(identity, via=Via.SESSION), remote_addr=remote_addr)
    return create_session(session, identity.id)


SESSION_LOOKUP = (
    select(
        BrowserSession.epoch,
        BrowserSession.expires_at,
        User.id,
        User.name,
        User.is_admin,
        User.is_staff,
        User.is_robot,
        User.terms_accepted_at,
        User.disabled_at,
        User.session_epoch,
    )
    .join(User, User.id == BrowserSession.user_id)
    .where(BrowserSession.id == bindparam("id"))
)


def session_identity(session: Session, key: str) -> Identity | None:
    """The person a live session key belongs to, or None for an ended, expired or superseded one.

    Read on every request, never remembered: signing out (or "everywhere") ends the session at once on every
    process, even for a copy of the cookie."""
    row = session.connection().execute(SESSION_LOOKUP, {"id": key_hash(key)}).first()
    if row is None or row.expires_at < utcnow():
        return None
    if row.is_robot or row.disabled_at is not None or row.session_epoch != row.epoch:
        return None
    return Identity.of(row)


def delete_session(session: Session, key: str) -> None:
    session.execute(delete(BrowserSession).where(BrowserSession.id == key_hash(key)))


def set_session_cookie(handler: BaseHandler, key: str) -> None:
    handler.set_signed_cookie(
        SESSION_COOKIE,
        key,
        expires_days=SESSION_DAYS,
        httponly=True,
        secure=handler.request.protocol == "https",
        samesite="Lax",
    )
    handler.session_key = key


def end_session(handler: BaseHandler) -> None:
    handler.clear_cookie(SESSION_COOKIE)
    handler.session_key = None


def session_key(handler: BaseHandler) -> str | None:
    """The session key of the request's signed session cookie, if it has one."""
    raw = handler.get_signed_cookie(SESSION_COOKIE, max_age_days=SESSION_DAYS)
    return raw.decode(errors="replace") if raw else None


def visitor_key(handler: BaseHandler) -> str:
    """A random key of this browser for XSRF values before it signs in, kept in a signed cookie."""
    raw = handler.get_signed_cookie(ANONYMOUS_COOKIE, max_age_days=SESSION_DAYS)
    if raw:
        return raw.decode(errors="replace")
    key = secrets.token_urlsafe(24)
    handler.set_signed_cookie(
        ANONYMOUS_COOKIE, key, httponly=True, samesite="Lax", secure=handler.request.protocol == "https"
    )
    return key


def xsrf_value(handler: BaseHandler) -> str:
    """The value this browser's forms and scripts send back, bound to its session (or visitor key)."""
    key = handler.session_key or visitor_key(handler)
    return hmac.new(handler.registry.secret_key, b"xsrf|" + key.encode(), hashlib.sha256).hexdigest()


def check_xsrf(handler: BaseHandler, sent: str | None) -> None:
    expected = xsrf_value(handler)
    if not sent or not hmac.compare_digest(expected.encode(), sent.encode(errors="replace")):
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
