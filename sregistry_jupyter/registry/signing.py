"""Capability URLs: short-lived links that carry their own authorisation.

The library client follows a redirect to download (and is handed URLs to upload to) without sending
its token, and sregistry-cli downloads without one too. Such a URL is the request path plus an expiry
and an HMAC of both under the registry's secret key, so it works for nobody once it expires and cannot
be altered to name another object.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import urlencode

from .errors import Forbidden


def _mac(secret_key: bytes, method: str, path: str, expires: int, bound: str) -> str:
    message = f"{method.upper()}\n{path}\n{expires}\n{bound}".encode()
    digest = hmac.new(secret_key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(secret_key: bytes, method: str, path: str, ttl: int, now: float | None = None, bound: str = "") -> str:
    """The query string (``expires=..&signature=..``) that authorises ``method path`` for ``ttl`` seconds.

    ``bound`` is a value the link is issued for (such as a user name) that the link carries separately and
    that ``verify`` must be given unchanged.
    """
    expires = int((now or time.time()) + ttl)
    return urlencode({"expires": expires, "signature": _mac(secret_key, method, path, expires, bound)})


def verify(
    secret_key: bytes, method: str, path: str, expires: str | None, signature: str | None, bound: str = ""
) -> None:
    """Raise Forbidden unless the signature matches and has not expired."""
    if not expires or not signature or not expires.isdigit():
        raise Forbidden("this link is not signed")
    expected = _mac(secret_key, method, path, int(expires), bound)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Forbidden("this link's signature is invalid")
    if int(expires) < time.time():
        raise Forbidden("this link has expired")
