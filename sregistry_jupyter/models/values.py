"""The kinds of value the native API's fields hold, with the rules the document states for them.

Patterns and lengths are documented here and enforced by the registry's own validators, whose refusals
name the value and the rule; the models check only the JSON type.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from . import rules


def documented(description: str, pattern: str | None = None, **schema: Any) -> Any:
    """Field metadata that puts ``pattern`` (anchored) and ``schema`` into the document only."""
    extra = dict(schema)
    if pattern is not None:
        extra["pattern"] = rules.anchored(pattern)
    return Field(description=description or None, json_schema_extra=extra or None)


Name = Annotated[
    str,
    documented(
        "Lower-case letters and digits, separated by single '.', '_' or '-'.",
        rules.NAME_PATTERN,
        maxLength=rules.NAME_MAX,
        examples=["lab"],
    ),
]
TeamName = Annotated[
    str,
    documented(
        "A team's name: spelled as a collection's.",
        rules.NAME_PATTERN,
        maxLength=rules.TEAM_NAME_MAX,
        examples=["group"],
    ),
]
TagName = Annotated[
    str,
    documented(
        "1-128 letters, digits, '_', '.' and '-', not starting with '.', '-' or `sha256.`.",
        rules.TAG_PATTERN,
        examples=["latest"],
    ),
]
Digest = Annotated[
    str,
    documented(
        "`sha256.` and the 64 lower-case hex digits of the file's SHA-256.",
        rules.DIGEST_PATTERN,
        examples=["sha256." + "0" * 64],
    ),
]
Arch = Annotated[
    str,
    documented("An architecture name as Go spells it (`amd64`, `arm64`, ...).", rules.ARCH_PATTERN, examples=["amd64"]),
]
Username = Annotated[
    str,
    documented(
        "A user name: lower-case letters, digits, '.', '_' and '-'.",
        rules.USERNAME_PATTERN,
        maxLength=rules.USERNAME_MAX,
        examples=["alice"],
    ),
]
RowId = Annotated[int, Field(ge=1, le=rules.MAX_ROW_ID)]
Count = Annotated[int, Field(ge=0)]
Bytes = Annotated[int, Field(ge=0, description="Size in bytes.", json_schema_extra={"format": "int64"})]
Description = Annotated[str, documented("Free text.", maxLength=rules.MAX_DESCRIPTION)]
