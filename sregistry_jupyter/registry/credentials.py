"""Recognising the caller, for every kind of credential, asynchronously and in one place.

A request may carry a registry token (``Authorization: Bearer``), a credential the authenticator knows
(a JupyterHub API token), a browser session cookie, an ``SREGISTRY-HMAC-SHA256`` signature over some of
its fields (sregistry-cli), or it may be a capability link whose signature is the authorisation. Each
is resolved here to a ``Principal`` without blocking the event loop: bearer tokens verified a moment ago
come from the credential cache (``credential_cache``), other database look-ups run on the read pool,
the hub is asked with an asynchronous client, and nothing is written on the way (a token's last use is
noted for the write-behind bookkeeping). Handlers only say which of these their surface
accepts (``BaseHandler.identify``); none builds a principal itself, and the base handler then applies
the policy, the terms of service and the limits to whatever was found, the same way for all of them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import tokens
from .access import Identity, Principal, Via
from .auth import sessions
from .errors import Forbidden
from .orm import User
from .services import hmac_auth, users

if TYPE_CHECKING:
    from .context import Registry
    from .handlers.base import BaseHandler

TOKEN_SCHEMES = ("bearer", "token")


def bearer_credential(header: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer|token <credential>`` header (scheme in any case)."""
    if not header:
        return None
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() not in TOKEN_SCHEMES:
        return None
    return credential.strip()


def cacheable(registry: Registry, identity: Identity) -> bool:
    """Whether a verified token may be remembered (``credential_cache``). Not while its person has still
    to accept the terms of service: they are about to, on whichever process serves the terms page, and the
    next request must see it rather than wait for the other processes to learn of it."""
    return identity.terms_accepted or identity.is_robot or not registry.terms_of_service


async def from_bearer(handler: BaseHandler, credential: str) -> Principal:
    """A registry token, or a credential the authenticator recognises; Unauthorized for anything else."""
    registry = handler.registry
    authenticator = registry.authenticator
    if tokens.key_id_of(credential) is None and authenticator is not None:
        outside = await authenticator.authenticate_bearer(handler, credential)
        if outside is not None:
            return outside
    key = ("token", tokens.hash_token(credential))
    found = registry.credentials.lookup(key)
    if found is None:
        started = time.monotonic()
        found = await registry.database.read(users.authenticate_token, credential)
        registry.credentials.observe(found.generation, started)
        if cacheable(registry, found.identity):
            registry.credentials.remember(key, found, found.generation, found.expires_at)
    registry.bookkeeping.note_token_use(found.token_id)
    return Principal(found.identity, found.scope, found.token_id, via=Via.TOKEN)


async def from_signature(
    registry: Registry, header: str, kind: str, collection: str, name: str, tag: str
) -> Principal:
    """The user whose live token signed ``kind|collection|…|name|tag`` (sregistry-cli), capped by its scope."""
    credential = hmac_auth.parse(header)
    hmac_auth.check_fresh(credential, kind)
    found = await registry.database.read(
        hmac_auth.verify, registry.secret_key, credential, collection, name, tag
    )
    registry.bookkeeping.note_token_use(found.token_id)
    return Principal(found.identity, found.scope, found.token_id, via=Via.HMAC)


async def from_session(handler: BaseHandler) -> Principal | None:
    """The person whose live browser session cookie came with the request (a session is a full
    credential of its person), or None; the handler remembers the session's key for XSRF values."""
    key = sessions.session_key(handler)
    if key is None:
        return None
    identity = await handler.registry.database.read(sessions.session_identity, key)
    if identity is None:
        return None
    handler.session_key = key
    return Principal(identity, "admin", via=Via.SESSION)


def user_identity(session: Session, name: str) -> Identity | None:
    user = session.scalar(select(User).where(User.name == name))
    return Identity.of(user) if user is not None else None


async def from_link(registry: Registry, username: str) -> Principal:
    """Whoever a verified capability link was issued to (read only), or nobody for an anonymous link.

    The link's signature has been checked by the caller; the user must still exist, and their access is
    checked again on use, so a link outlives neither the account nor the user's access.
    """
    if not username:
        return Principal(None, "read", via=Via.LINK)
    identity = await registry.database.read(user_identity, username)
    if identity is None:
        raise Forbidden("this link is no longer valid")
    return Principal(identity, "read", via=Via.LINK)

