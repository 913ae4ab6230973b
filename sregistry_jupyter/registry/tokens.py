"""API tokens: generation, parsing and verification.

A token is ``sreg_<key id>_<secret>``. The key id is public and indexes the row; the database keeps only
the SHA-256 of the whole token, so a copy of the database does not reveal usable tokens. The secret half
is an HMAC of the key id and a per-token salt under the registry's secret key: sregistry-cli signs its
requests with the token itself as the HMAC key, and this lets the registry re-derive a token it never
stored in order to check such a signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

PREFIX = "sreg_"
TOKEN_RE = re.compile(r"sreg_([a-z0-9]{12})_([A-Za-z0-9_-]{43})")
SCOPES = ("read", "write", "admin")
KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def derive(secret_key: bytes, key_id: str, salt: str) -> str:
    """The token for ``key_id`` and ``salt``; deterministic under one secret key."""
    mac = hmac.new(secret_key, f"{key_id}:{salt}".encode(), hashlib.sha256).digest()
    return f"{PREFIX}{key_id}_{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def new_key_id() -> str:
    """A random public key id: 12 lower-case letters and digits (of tokens and of share links)."""
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(12))


def generate(secret_key: bytes) -> tuple[str, str, str]:
    """A new ``(key_id, salt, token)``."""
    key_id = new_key_id()
    salt = secrets.token_hex(16)
    return key_id, salt, derive(secret_key, key_id, salt)


def key_id_of(token: str) -> str | None:
    """The key id of a well-formed token, else None (no database lookup for garbage)."""
    match = TOKEN_RE.fullmatch(token)
    return match.group(1) if match else None


def matches(token: str, hashed: str) -> bool:
    return hmac.compare_digest(hash_token(token), hashed)
