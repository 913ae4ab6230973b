"""Users and their API tokens."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import tokens
from ..access import Action, Identity, Person, Principal, can, may_manage_tokens, token_management_refusal
from ..credential_cache import GENERATION
from ..errors import Conflict, CredentialRequired, Forbidden, InvalidInput, NotFound, Unauthorized
from ..names import MAX_ROW_ID, validate_username
from ..orm import ApiToken, User, utcnow
from . import audit

MAX_TOKEN_NAME = 100
MAX_EXPIRY_DAYS = 3650


def create_user(session: Session, name: str, *, admin: bool = False, staff: bool = False, robot: bool = False) -> User:
    validate_username(name)
    user = User(name=name, is_admin=admin, is_staff=staff, is_robot=robot)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"user {name!r} already exists") from None
    return user


def normalise_name(raw: str) -> str:
    """A valid user name derived from an outside one (``Alice Smith`` -> ``alice-smith``)."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", raw.strip().lower()).strip("._-")[:60]
    return cleaned or "user"


def available_name(session: Session, raw: str) -> str:
    """``normalise_name(raw)``, numbered if another account already has it."""
    base = normalise_name(raw)
    taken = set(session.scalars(select(User.name).where(User.name.like(f"{base}%"))))
    if base not in taken:
        return base
    return next(f"{base}-{n}" for n in range(2, len(taken) + 3) if f"{base}-{n}" not in taken)


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user {name!r}")
    return user


def create_token(
    session: Session,
    user: Person,
    secret_key: bytes,
    *,
    name: str = "token",
    scope: str = "write",
    expires_in_days: float | None = None,
) -> tuple[ApiToken, str]:
    """A new token for ``user``; the token string is returned once and never stored."""
    if scope not in tokens.SCOPES:
        raise InvalidInput(f"invalid scope {scope!r}: use one of {', '.join(tokens.SCOPES)}")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_TOKEN_NAME:
        raise InvalidInput(f"a token name is 1-{MAX_TOKEN_NAME} characters")
    expires_at = None
    if expires_in_days is not None:
        if not 0 < expires_in_days <= MAX_EXPIRY_DAYS:
            raise InvalidInput(f"expiry must be between 0 and {MAX_EXPIRY_DAYS} days")
        expires_at = utcnow() + dt.timedelta(days=expires_in_days)
    key_id, salt, token = tokens.generate(secret_key)
    row = ApiToken(
        user_id=user.id,
        name=name.strip(),
        key_id=key_id,
        salt=salt,
        hashed=tokens.hash_token(token),
        scope=scope,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    actor = Principal(Identity(user.id, user.name))
    audit.record(session, "token.create", actor, detail={"token": row.name, "scope": scope})
    return row, token


def token_is_live(row: ApiToken | Row[Any], now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


@dataclass(frozen=True)
class TokenMatch:
    """The user a verified token belongs to, and what the token allows; for the credential cache, the
    credentials generation it was read at and when the token expires."""

    identity: Identity
    scope: str
    token_id: int
    generation: int = 0
    expires_at: dt.datetime | None = None

    @classmethod
    def of(cls, row: ApiToken) -> TokenMatch:
        return cls(Identity.of(row.user), row.scope, row.id)


# The columns a bearer token's check needs, in one indexed statement built once: no ORM objects are made for
# the lookup, and its compiled form stays in SQLAlchemy's statement cache. The credentials generation comes in
# the same statement, so that it belongs to the same snapshot as the token (see ``credential_cache``).
TOKEN_LOOKUP = (
    select(
        ApiToken.id.label("token_id"),
        ApiToken.hashed,
        ApiToken.scope,
        ApiToken.revoked_at,
        ApiToken.expires_at,
        User.id,
        User.name,
        User.is_admin,
        User.is_staff,
        User.is_robot,
        User.terms_accepted_at,
        User.disabled_at,
        GENERATION.label("generation"),
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.key_id == bindparam("key_id"))
)


def authenticate_token(session: Session, token: str) -> TokenMatch:
    """Who a bearer token stands for; Unauthorized for anything unknown, revoked or expired."""
    key_id = tokens.key_id_of(token)
    row = session.connection().execute(TOKEN_LOOKUP, {"key_id": key_id}).first() if key_id else None
    if row is None or not tokens.matches(token, row.hashed) or not token_is_live(row):
        raise Unauthorized("invalid, expired or revoked token")
    if row.disabled_at is not None:
        raise Unauthorized(f"the account {row.name!r} is disabled; ask the registry's staff")
    return TokenMatch(Identity.of(row), row.scope, row.token_id, row.generation or 0, row.expires_at)


def list_tokens(session: Session, user: Person) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))


def revoke_token(session: Session, principal: Principal, token_id: int) -> ApiToken:
    """Revoke one of the caller's own tokens (admins may revoke anyone's)."""
    if principal.user is None:
        raise CredentialRequired("revoking a token needs a signed-in user or a token")
    row = session.get(ApiToken, token_id) if 0 < token_id <= MAX_ROW_ID else None
    if row is None or (row.user_id != principal.user.id and not can(session, principal, Action.ADMIN)):
        raise NotFound(f"no token {token_id}")
    if not may_manage_tokens(principal, row.id):
        raise Forbidden(token_management_refusal(principal))
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, "token.revoke", principal, detail={"token": row.name})
    return row
