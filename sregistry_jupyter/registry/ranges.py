"""Parsing of HTTP ``Range`` headers for blob downloads.

One ``bytes`` range is served as 206. Several ranges in one request are refused (416) rather than
answered with a multipart body: no Singularity client asks for them, and they are a cheap way to make a
server do a lot of small reads. Inverted, malformed and unsatisfiable ranges are 416 as well, so a
client that asks for something odd learns it at once instead of silently receiving the whole file.
"""

from __future__ import annotations

import re

from .errors import RangeNotSatisfiable

BYTES_RANGE_RE = re.compile(r"\s*(\d*)\s*-\s*(\d*)\s*")


def _unsatisfiable(message: str, size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(message, headers={"Content-Range": f"bytes */{size}"})


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive ``(first, last)`` byte positions requested, or None for the whole file.

    Units other than ``bytes`` are ignored, as RFC 9110 allows.
    """
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        raise _unsatisfiable("multiple ranges in one request are not supported", size)
    match = BYTES_RANGE_RE.fullmatch(spec)
    if not match or not (match.group(1) or match.group(2)):
        raise _unsatisfiable(f"malformed range {header!r}", size)
    first_text, last_text = match.groups()
    if not first_text:
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(f"range {header!r} selects no bytes", size)
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        raise _unsatisfiable(f"range {header!r} ends before it starts", size)
    if first >= size:
        raise _unsatisfiable(f"range {header!r} starts beyond the end ({size} bytes)", size)
    return first, min(last, size - 1)
