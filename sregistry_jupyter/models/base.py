"""What every model of the native API shares: how answers and bodies treat fields, and timestamps.

Answers (``Answer``) accept fields they do not declare and keep them, so a client reading a newer registry
still works and still sees what is new; their fields have defaults where an older registry may not send
them. The document still describes them as closed objects with every field present, because that is what
this registry sends: a renamed or added field then fails the test that holds document and server together.

Bodies (``Body``) are validated strictly (no string for a number, no ``true`` for 1) and ignore fields they
do not know, as the registry always has.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema


def when(value: dt.datetime | None) -> str | None:
    """A moment as the registry writes it: UTC, whole seconds, ``Z`` (``2024-05-01T12:00:00Z``)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


Timestamp = Annotated[
    dt.datetime,
    PlainSerializer(when, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2024-05-01T12:00:00Z"]}),
]


class Answer(BaseModel):
    """A JSON object the registry answers with."""

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        json_schema_extra={"additionalProperties": False},
        json_schema_serialization_defaults_required=True,
    )


class Body(BaseModel):
    """A JSON object a client sends."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)
