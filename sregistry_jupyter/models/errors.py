"""The error envelope of the native API and its stable, machine-readable codes.

Clients branch on ``code``, never on ``message`` (which is for people and may be reworded), so a code,
once given, keeps its meaning.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field


class ErrorCode(enum.StrEnum):
    """Every ``code`` a native error answer carries."""

    BAD_REQUEST = "BAD_REQUEST"
    INVALID = "INVALID"
    UNAUTHORIZED = "UNAUTHORIZED"
    DENIED = "DENIED"
    SIGN_IN_FAILED = "SIGN_IN_FAILED"
    NOT_FOUND = "NOT_FOUND"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    CONFLICT = "CONFLICT"
    LENGTH_REQUIRED = "LENGTH_REQUIRED"
    TOO_LARGE = "TOO_LARGE"
    RANGE_INVALID = "RANGE_INVALID"
    DIGEST_INVALID = "DIGEST_INVALID"
    SIZE_INVALID = "SIZE_INVALID"
    TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"
    UPLOAD_QUOTA = "UPLOAD_QUOTA"
    TUS_VERSION = "TUS_VERSION"
    MEDIA_TYPE = "MEDIA_TYPE"
    UNAVAILABLE = "UNAVAILABLE"
    HUB_ERROR = "HUB_ERROR"
    PROVIDER_ERROR = "PROVIDER_ERROR"
    INSUFFICIENT_STORAGE = "INSUFFICIENT_STORAGE"
    HTTP_ERROR = "HTTP_ERROR"
    INTERNAL = "INTERNAL"


class ErrorBody(BaseModel):
    """The error envelope of the native API. ``code`` is a string rather than the enum when read, so a
    client meets a code added by a newer registry as a value, not as a failure to parse."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False}, title="Error")

    code: str = Field(
        description="Stable and machine-readable.",
        examples=["NOT_FOUND"],
        json_schema_extra={"enum": [c.value for c in ErrorCode]},
    )
    message: str = Field(description="For people.")
