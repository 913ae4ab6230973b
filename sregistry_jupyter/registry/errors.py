"""Domain errors raised by services and translated by each protocol adapter into its own envelope.

Services never know which surface called them; a handler maps the error's ``status`` and ``message``
onto the library, shub or native error format. Each error's ``code`` is one of the native API's stable
codes (``models.ErrorCode``), which clients branch on.
"""

from __future__ import annotations

from ..models import ErrorCode


class RegistryError(Exception):
    """Base class: an HTTP-like status, a stable machine-readable code and a human message."""

    status = 400
    code: str = ErrorCode.BAD_REQUEST

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidInput(RegistryError):
    status = 400
    code = ErrorCode.INVALID


class Unauthorized(RegistryError):
    status = 401
    code = ErrorCode.UNAUTHORIZED


class CredentialRequired(Unauthorized):
    """Nobody is asking, and the action needs someone: each surface adds how its clients get a credential."""


class Forbidden(RegistryError):
    status = 403
    code = ErrorCode.DENIED


class NotFound(RegistryError):
    status = 404
    code = ErrorCode.NOT_FOUND


class RequestTimeout(RegistryError):
    """The request's body arrived too slowly, and the registry gave up waiting for it (``connections``)."""

    status = 408
    code = ErrorCode.REQUEST_TIMEOUT


class Conflict(RegistryError):
    status = 409
    code = ErrorCode.CONFLICT


class LengthRequired(RegistryError):
    status = 411
    code = ErrorCode.LENGTH_REQUIRED


class TooLarge(RegistryError):
    status = 413
    code = ErrorCode.TOO_LARGE


class RangeNotSatisfiable(RegistryError):
    status = 416
    code = ErrorCode.RANGE_INVALID


class DigestMismatch(RegistryError):
    status = 400
    code = ErrorCode.DIGEST_INVALID


class SizeMismatch(RegistryError):
    status = 400
    code = ErrorCode.SIZE_INVALID


class RetryLater(RegistryError):
    """A refusal that ends by itself; ``Retry-After`` tells the client when to try again."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class TooManyRequests(RetryLater):
    """A limit was reached; ``Retry-After`` counts down to the end of its window."""

    status = 429
    code = ErrorCode.TOO_MANY_REQUESTS


class Unavailable(RetryLater):
    """Something the request needs (the database's write lock, a hub) is busy or away for now."""

    status = 503
    code = ErrorCode.UNAVAILABLE


class InsufficientStorage(RegistryError):
    """The disk (or the database's) is full: nothing was stored, and the registry stays up."""

    status = 507
    code = ErrorCode.INSUFFICIENT_STORAGE


class SignInFailed(Forbidden):
    """The sign-in provider or hub refused the sign-in, or the callback does not belong to this browser's sign-in."""

    code = ErrorCode.SIGN_IN_FAILED
