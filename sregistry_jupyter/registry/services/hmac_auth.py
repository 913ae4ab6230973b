"""The ``SREGISTRY-HMAC-SHA256`` request signatures that sregistry-cli sends.

The client signs ``<kind>|<collection>|<timestamp>|<name>|<tag>|`` with its API token as the HMAC key
and sends ``SREGISTRY-HMAC-SHA256 Credential=<kind>/<base64 user>/<timestamp>,Signature=<hex>``. The
registry never stores tokens, so it re-derives each live token of the named user from its row
(``tokens.derive``) and compares signatures in constant time; the matching token's scope then caps what
the request may do, exactly as for a Bearer token.

The timestamp has hour granularity (``%Y%m%dT%HZ``). sregistry demanded the current hour, so a request
signed at 16:59:59 and received at 17:00:00 failed; the previous hour is accepted as well, and nothing
else, so a captured signature stays usable for at most two hours, and only for the one kind, collection,
container and tag it names.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .. import tokens
from ..errors import Unauthorized
from ..orm import ApiToken, User, utcnow
from .users import TokenMatch

SCHEME = "SREGISTRY-HMAC-SHA256"
TIMESTAMP_FORMAT = "%Y%m%dT%HZ"
HEADER_RE = re.compile(
    r"(?i:SREGISTRY-HMAC-SHA256)\s+Credential=([a-z]+)/([A-Za-z0-9+/=]{1,400})/(\d{8}T\d{2}Z)"
    r"\s*,\s*Signature=([0-9a-fA-F]{64})\s*"
)
INVALID = "invalid SREGISTRY-HMAC-SHA256 credential"


@dataclass(frozen=True)
class Credential:
    kind: str
    username: str
    timestamp: str
    signature: str


def is_hmac(header: str | None) -> bool:
    """True if an ``Authorization`` header uses this scheme (whatever its case)."""
    return bool(header) and header.strip()[: len(SCHEME)].upper() == SCHEME


def parse(header: str) -> Credential:
    """The parts of an ``Authorization`` header; Unauthorized if it is not a well-formed credential."""
    match = HEADER_RE.fullmatch(header.strip())
    if match is None:
        raise Unauthorized(f"malformed {SCHEME} header")
    kind, encoded_user, timestamp, signature = match.groups()
    try:
        username = base64.b64decode(encoded_user, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized(f"malformed {SCHEME} header: the user name is not base64") from None
    return Credential(kind, username, timestamp, signature.lower())


def timestamp(now: dt.datetime) -> str:
    return now.strftime(TIMESTAMP_FORMAT)


def accepted_timestamps(now: dt.datetime | None = None) -> frozenset[str]:
    """The current hour and the previous one, so that requests straddling the hour are not refused."""
    now = now or utcnow()
    return frozenset({timestamp(now), timestamp(now - dt.timedelta(hours=1))})


def check_fresh(credential: Credential, kind: str, now: dt.datetime | None = None) -> None:
    """Refuse a credential of another kind or signed outside the accepted hours."""
    if credential.kind != kind:
        raise Unauthorized(f"this request needs a {kind!r} credential, not {credential.kind!r}")
    if credential.timestamp not in accepted_timestamps(now):
        raise Unauthorized("the credential's timestamp is too old or in the future; check the client's clock")


def payload(kind: str, collection: str, stamp: str, name: str, tag: str) -> str:
    return f"{kind}|{collection}|{stamp}|{name}|{tag}|"


def sign(token: str, message: str) -> str:
    return hmac.new(token.encode(), message.encode(), hashlib.sha256).hexdigest()


def live_tokens(session: Session, username: str, now: dt.datetime | None = None) -> list[ApiToken]:
    """The user's tokens that are neither revoked nor expired (none for an unknown user)."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(ApiToken)
            .join(User)
            .where(
                User.name == username,
                User.disabled_at.is_(None),
                ApiToken.revoked_at.is_(None),
                or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now),
            )
            .order_by(ApiToken.id)
        )
    )


def verify(
    session: Session, secret_key: bytes, credential: Credential, collection: str, name: str, tag: str
) -> TokenMatch:
    """The user whose live token made ``credential``'s signature over this request, else Unauthorized.

    Freshness is checked separately (``check_fresh``) so that an upload can be checked before its body
    and its signature once the form fields it covers have arrived.
    """
    message = payload(credential.kind, collection, credential.timestamp, name, tag)
    for row in live_tokens(session, credential.username):
        expected = sign(tokens.derive(secret_key, row.key_id, row.salt), message)
        if hmac.compare_digest(expected, credential.signature):
            return TokenMatch.of(row)
    raise Unauthorized(INVALID)

