"""What can go wrong when talking to a registry, as exceptions that carry the registry's own words.

Every exception derives from ``RegistryError``, so a caller can catch one class; each HTTP answer the
registry gives for a refusal maps onto one subclass, and an unreachable or failing registry is
``RegistryUnavailable``. No caller ever has to look at a bare status code.
"""

from __future__ import annotations

import json

import httpx


class RegistryError(Exception):
    """A refusal or failure, with the registry's HTTP ``status``, its stable ``code`` and its ``message``."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.code = code

    def __str__(self) -> str:
        return self.message


class InvalidInput(RegistryError):
    """The request was malformed: a bad name, tag, digest, size or body (400, 411, 413, 416)."""

    status = 400


class Unauthorized(RegistryError):
    """No credential, or one the registry does not accept (401)."""

    status = 401


class Forbidden(RegistryError):
    """The credential is valid but may not do this (403)."""

    status = 403


class NotFound(RegistryError):
    """No such thing, or nothing the caller may see (404): the registry answers both alike."""

    status = 404


class Conflict(RegistryError):
    """The request clashes with the registry's state: a frozen tag, an existing name, a moved offset (409)."""

    status = 409


class RateLimited(RegistryError):
    """Too many requests (429); ``retry_after`` is how many seconds the registry asks the caller to wait."""

    status = 429

    def __init__(self, message: str, *, status: int | None = 429, code: str = "", retry_after: float = 1.0) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, or failed to answer (a transport error or a 5xx)."""


class IntegrityError(RegistryError):
    """Downloaded bytes do not match the digest the registry announced; nothing was kept."""


BY_STATUS: dict[int, type[RegistryError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    411: InvalidInput,
    413: InvalidInput,
    416: InvalidInput,
    429: RateLimited,
}


def error_message(response: httpx.Response) -> tuple[str, str]:
    """The registry's ``(code, message)`` from any of its envelopes, or a sentence about the status."""
    try:
        body = json.loads(response.content or b"null")
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        message = inner.get("message") or body.get("detail")
        if isinstance(message, str) and message:
            return str(inner.get("code") or ""), message
    reason = response.reason_phrase or "error"
    return "", f"the registry answered {response.status_code} {reason} to {response.request.method} {response.url.path}"


def retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


def error_for(response: httpx.Response) -> RegistryError:
    """The exception for an answer that is not a success."""
    code, message = error_message(response)
    status = response.status_code
    if status == 429:
        return RateLimited(message, code=code, retry_after=retry_after(response))
    kind = BY_STATUS.get(status)
    if kind is None:
        kind = RegistryUnavailable if status >= 500 else RegistryError
    return kind(message, status=status, code=code)


def unreachable(url: str, error: Exception) -> RegistryUnavailable:
    detail = str(error) or type(error).__name__
    return RegistryUnavailable(f"the registry at {url} cannot be reached: {detail}")
