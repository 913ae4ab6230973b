"""Share links: a download link for one image that works without signing in until it expires.

A link is ``/shares/shr_<key id>_<secret>``. The key id is public and finds the row; only the SHA-256 of
the whole token is stored and it is compared in constant time, so a copy of the database yields no
working links. A link reaches exactly one image, whatever collection it is in; revoking deletes the row,
and deleting the image deletes its links.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import tokens
from ..access import Action, Principal
from ..errors import InvalidInput, NotFound
from ..names import MAX_ROW_ID
from ..orm import Image, Share, utcnow
from . import audit, images
from .collections import require_user

PREFIX = "shr_"
SHARE_RE = re.compile(r"shr_([a-z0-9]{12})_([A-Za-z0-9_-]{43})")
DEFAULT_DAYS = 7
UNKNOWN = "no such share link: it may have been revoked, or its image deleted"


def share_link(token: str) -> str:
    return f"/shares/{token}"


def share_days(value: object, max_days: int) -> int:
    """The lifetime asked for: a whole number of days from 1 to ``max_days`` (default a week or less)."""
    if value is None:
        return min(DEFAULT_DAYS, max_days)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= max_days:
        raise InvalidInput(f"'days' must be a whole number from 1 to {max_days}")
    return value


def _image(
    session: Session, principal: Principal, collection: str, container: str, ref: str, arch: str | None
) -> Image:
    """The image, if the caller may share it (invisible: 404; visible but not theirs: 403)."""
    require_user(principal)
    return images.resolve(session, principal, collection, container, ref, arch, Action.SHARE)


def create_share(
    session: Session,
    principal: Principal,
    collection: str,
    container: str,
    ref: str,
    *,
    days: int,
    arch: str | None = None,
) -> tuple[Image, Share, str]:
    """The image, a new link to it and the link's token, which is returned once and never stored."""
    image = _image(session, principal, collection, container, ref, arch)
    key_id = tokens.new_key_id()
    token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = Share(
        image_id=image.id,
        key_id=key_id,
        hashed=tokens.hash_token(token),
        created_by_id=principal.user.id if principal.user else None,
        expires_at=utcnow() + dt.timedelta(days=days),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        "share.create",
        principal,
        collection=collection,
        container=container,
        digest=image.digest,
        detail={"share": row.id, "days": days},
    )
    return image, row, token


def list_shares(
    session: Session, principal: Principal, collection: str, container: str, ref: str, arch: str | None = None
) -> tuple[Image, list[Share]]:
    """The image and every link to it, expired ones too (they show when a link stopped working), newest first."""
    image = _image(session, principal, collection, container, ref, arch)
    return image, list(session.scalars(select(Share).where(Share.image_id == image.id).order_by(Share.id.desc())))


def revoke_share(
    session: Session,
    principal: Principal,
    collection: str,
    container: str,
    ref: str,
    share_id: int,
    arch: str | None = None,
) -> None:
    image = _image(session, principal, collection, container, ref, arch)
    row = session.get(Share, share_id) if 0 < share_id <= MAX_ROW_ID else None
    if row is None or row.image_id != image.id:
        raise NotFound(f"this image has no share link {share_id}")
    session.delete(row)
    audit.record(
        session,
        "share.revoke",
        principal,
        collection=collection,
        container=container,
        digest=image.digest,
        detail={"share": share_id},
    )


def open_share(session: Session, token: str) -> tuple[Share, Image]:
    """The link ``token`` names and its image, while it lasts; NotFound with the reason otherwise."""
    match = SHARE_RE.fullmatch(token)
    row = session.scalar(select(Share).where(Share.key_id == match.group(1))) if match else None
    if row is None or not tokens.matches(token, row.hashed):
        raise NotFound(UNKNOWN)
    if row.expires_at <= utcnow():
        raise NotFound(f"this share link expired on {row.expires_at:%Y-%m-%d %H:%M} UTC; ask its owner for a new one")
    return row, session.get_one(Image, row.image_id)
