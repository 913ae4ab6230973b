"""How numbers, sizes and times read on the pages (one wording everywhere)."""

from __future__ import annotations

import datetime as dt

from ...orm import utcnow

UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def human_size(size: int | None) -> str:
    """Bytes in decimal units, as ``ls -h --si`` and the clients' progress bars show them."""
    value = float(size or 0)
    for unit in UNITS:
        if value < 1000 or unit == UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def ago(when: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """A timestamp as people say it ("3 hours ago"); the exact time goes in the element's title."""
    if when is None:
        return "never"
    seconds = int(((now or utcnow()) - when).total_seconds())
    if seconds < 0:
        return "in " + until(when, now)
    for length, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= length:
            count = seconds // length
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def until(when: dt.datetime, now: dt.datetime | None = None) -> str:
    seconds = int((when - (now or utcnow())).total_seconds())
    if seconds <= 0:
        return "expired"
    days, hours = seconds // 86400, seconds // 3600
    if days:
        return f"{days} day{'s' if days != 1 else ''}"
    if hours:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{max(1, seconds // 60)} minutes"


def stamp(when: dt.datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC") if when else ""


def short_digest(digest: str) -> str:
    """``sha256.`` and the first 12 hex digits, as registries show digests in lists."""
    return digest[: len("sha256.") + 12]


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"
