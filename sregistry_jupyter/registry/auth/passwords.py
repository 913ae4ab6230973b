"""Password hashing for local accounts: argon2id, with parameters that can be raised over time.

A stored hash carries its own parameters, so older hashes keep verifying after the parameters change
and are upgraded at the next successful sign-in (``needs_rehash``). Checking a password for a user who
does not exist, or has no password, still costs one full verification against a dummy hash, so the
response time does not reveal which user names exist.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 4096

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    return _hasher.hash("not a password anyone has; verified only to spend the same time")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(hashed: str | None, password: str) -> bool:
    """True if ``password`` matches ``hashed``; a missing or unreadable hash never matches but costs the same."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _matches(hashed or _dummy_hash(), password) and hashed is not None
    except InvalidHashError:
        _matches(_dummy_hash(), password)
        return False


def _matches(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except VerificationError:
        return False


def needs_rehash(hashed: str) -> bool:
    """True if ``hashed`` was made with weaker parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(hashed)
    except (InvalidHashError, ValueError):
        return True


def password_problem(password: str, repeated: str | None = None) -> str | None:
    """Why ``password`` cannot be a new password, or None if it can."""
    if len(password) < MIN_LENGTH:
        return f"a password has at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password has at most {MAX_LENGTH} characters"
    if repeated is not None and password != repeated:
        return "the two new passwords are not the same"
    return None
