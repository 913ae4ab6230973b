"""The rules a native API value follows: patterns, lengths and choices.

The registry enforces them (``registry/names.py``, ``registry/tokens.py`` and the services hold the same
values, and a test holds the two to each other), the models carry them into the OpenAPI document, and the
client may check a value before sending it. Patterns match a whole value, as the registry's ``fullmatch``.
"""

from __future__ import annotations

NAME_MAX = 128
NAME_PATTERN = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
TAG_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
DIGEST_PATTERN = r"sha256\.([0-9a-f]{64})"
ARCH_PATTERN = r"[a-z0-9_]{1,16}"
USERNAME_MAX = 64
USERNAME_PATTERN = r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?"
TOKEN_PATTERN = r"sreg_([a-z0-9]{12})_([A-Za-z0-9_-]{43})"
SHARE_PATTERN = r"shr_([a-z0-9]{12})_([A-Za-z0-9_-]{43})"
INVITATION_PATTERN = r"(\d{1,10})\.(\d{1,10})\.([A-Za-z0-9_-]{43})"

TEAM_NAME_MAX = 64
MAX_DESCRIPTION = 10_000
MAX_TOKEN_NAME = 100
MAX_EXPIRY_DAYS = 3650
MAX_ROW_ID = 2**31 - 1
MAX_PAGE = 1_000_000
MAX_STATS_DAYS = 366
DEFAULT_SHARE_DAYS = 7

SCOPES = ("read", "write", "admin")
SORTS = ("name", "-name", "created", "-created", "updated", "-updated")


def anchored(pattern: str) -> str:
    """A JSON Schema ``pattern`` (which may match anywhere) that matches only a whole value."""
    return f"^(?:{pattern})$"
