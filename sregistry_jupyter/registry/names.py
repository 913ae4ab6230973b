"""Validation of every name, tag and digest that reaches the registry from outside.

The grammar is the library client's own (``[a-z0-9]+(?:[._-][a-z0-9]+)*``), so whatever the native API
accepts can also be pushed and pulled with ``apptainer``. Storage paths are derived from digests only, so
a name can never reach the filesystem; these checks exist so that callers get a clear 400 early.
"""

from __future__ import annotations

import re

from .errors import InvalidInput

NAME_MAX = 128
NAME_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"sha256\.([0-9a-f]{64})")
ARCH_RE = re.compile(r"[a-z0-9_]{1,16}")
USERNAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?")


def validate_name(value: str, what: str = "name") -> str:
    """Return ``value`` if it is a valid collection or container name, else raise InvalidInput."""
    if not isinstance(value, str) or len(value) > NAME_MAX or not NAME_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid {what} {value!r}: use lower-case letters and digits, separated by single '.', '_' or '-'"
        )
    return value


def validate_tag(value: str) -> str:
    """Return ``value`` if it is a valid tag; ``sha256.`` prefixes are refused so tags never pose as digests."""
    if not isinstance(value, str) or not TAG_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid tag {value!r}: 1-128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        )
    if value.startswith("sha256."):
        raise InvalidInput(f"invalid tag {value!r}: tags may not start with 'sha256.'")
    return value


def validate_digest(value: str) -> str:
    """Return ``value`` if it is ``sha256.<64 lower-case hex>``; the form the library client computes."""
    if not isinstance(value, str) or not DIGEST_RE.fullmatch(value):
        raise InvalidInput(f"invalid digest {value!r}: expected sha256.<64 lower-case hex digits>")
    return value


def digest_hex(digest: str) -> str:
    """The hex part of a validated digest."""
    return validate_digest(digest)[len("sha256.") :]


def is_digest(value: str) -> bool:
    return bool(DIGEST_RE.fullmatch(value))


def validate_arch(value: str) -> str:
    if not isinstance(value, str) or not ARCH_RE.fullmatch(value):
        raise InvalidInput(f"invalid architecture {value!r}")
    return value


def validate_username(value: str) -> str:
    if not isinstance(value, str) or not USERNAME_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid user name {value!r}: 1-64 lower-case letters, digits, '.', '_' or '-', starting and "
            "ending with a letter or digit"
        )
    return value


MAX_ROW_ID = 2**31 - 1


def row_id(value: str, what: str) -> int:
    """A numeric id from a URL, within what the databases store (a 5,000-digit number is a clear 400,
    not a conversion error)."""
    if not value.isdigit() or len(value) > len(str(MAX_ROW_ID)) or not 0 < int(value) <= MAX_ROW_ID:
        raise InvalidInput(f"a {what} id is a number from 1 to {MAX_ROW_ID}")
    return int(value)
