"""Verified bearer tokens remembered between requests.

Checking a bearer token is a database round trip, on every authenticated request; most requests present a
token that was checked a moment ago. This cache keeps what each verified token stands for, keyed by the token's
SHA-256, for as long as the credentials generation says nothing could have changed it (``generation_cache``
has the rule). Database triggers (migration 0006) bump it in the transaction of any change that alters what a
token means: a token revoked, expired early or re-scoped, a user disabled, renamed or given other rights. A
token lookup reads the generation in the same statement as the token. Expiry is checked on every use.

Browser sessions are not remembered: signing out must end a session at once on every process, and pages are
not where the round trip matters.
"""

from __future__ import annotations

from .generation_cache import GenerationCache, generation_of
from .orm import ApiToken, User

CREDENTIALS = "credentials"
GENERATION = generation_of(CREDENTIALS)
DEFAULT_SIZE = 10_000


def credential_cache(max_age: float, size: int = DEFAULT_SIZE) -> GenerationCache:
    """An empty cache of at most ``size`` tokens, each used while the generation was confirmed within
    ``max_age`` seconds."""
    return GenerationCache(CREDENTIALS, (ApiToken, User), max_age=max_age, capacity=size)
