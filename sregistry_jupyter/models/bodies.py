"""The JSON bodies clients send to the native API.

Each model checks the JSON types (strictly: no ``"7"`` for 7, no ``true`` for 1); the rules a value must
follow beyond its type are documented here and checked by the registry's validators, whose messages name the
value and the rule. Fields a body does not declare are ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, ValidatorFunctionWrapHandler, field_validator
from pydantic_core import PydanticCustomError

from . import rules
from .base import Body
from .people import Role, TeamRole
from .values import documented


def name_field(description: str, maximum: int, example: str) -> Any:
    return documented(description, rules.NAME_PATTERN, maxLength=maximum, examples=[example])


class CreateToken(Body):
    name: str = Field("token", json_schema_extra={"minLength": 1, "maxLength": rules.MAX_TOKEN_NAME, "pattern": r"\S"})
    scope: str = Field("read", json_schema_extra={"enum": list(rules.SCOPES)})
    expires_in_days: float | None = Field(
        None, gt=0, le=rules.MAX_EXPIRY_DAYS, description="Absent or null: the token never expires."
    )


class CreateCollection(Body):
    name: str = name_field("The new collection's name.", rules.NAME_MAX, "lab")
    description: str = Field("", json_schema_extra={"maxLength": rules.MAX_DESCRIPTION})
    private: bool | None = Field(None, description="Absent or null: the registry's default (public).")


class UpdateCollection(Body):
    """Absent or null fields are left as they are."""

    description: str | None = Field(None, json_schema_extra={"maxLength": rules.MAX_DESCRIPTION})
    private: bool | None = None


class SetTag(Body):
    digest: str = documented("The image the tag points at.", rules.DIGEST_PATTERN, examples=["sha256." + "0" * 64])
    arch: str | None = Field(None, description="The image's architecture, if it must match.")
    frozen: bool | None = Field(None, description="Freeze or thaw the tag; freezing needs an owner.")


class CreateTeam(Body):
    name: str = name_field("The new team's name.", rules.TEAM_NAME_MAX, "group")
    description: str = Field("", json_schema_extra={"maxLength": rules.MAX_DESCRIPTION})
    open: bool = Field(False, description="Let anyone join.")


class UpdateTeam(Body):
    """Absent or null fields are left as they are."""

    description: str | None = Field(None, json_schema_extra={"maxLength": rules.MAX_DESCRIPTION})
    open: bool | None = None


class AddTeamMember(Body):
    user: str = documented("The user to add.", rules.USERNAME_PATTERN, examples=["alice"])
    role: str = Field(TeamRole.MEMBER.value, json_schema_extra={"enum": [r.value for r in TeamRole]})


class SetTeamRole(Body):
    role: str = Field(json_schema_extra={"enum": [r.value for r in TeamRole]})


class AddCollectionMember(Body):
    user: str = documented("The user to give the role to.", rules.USERNAME_PATTERN, examples=["alice"])
    role: str = Field(Role.CONTRIBUTOR.value, json_schema_extra={"enum": [r.value for r in Role]})


class SetCollectionRole(Body):
    role: str = Field(json_schema_extra={"enum": [r.value for r in Role]})


class CreateShare(Body):
    """The registry's ``max_share_days`` (passed as validation context) bounds ``days``."""

    days: int | None = Field(
        None,
        ge=1,
        description="How long the link works, in days (7 unless given): up to the registry's `max_share_days` "
        "(30 unless configured; more is a 400).",
        json_schema_extra={"default": rules.DEFAULT_SHARE_DAYS},
    )

    @field_validator("days", mode="wrap")
    @classmethod
    def whole_days(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> int | None:
        """Any refusal of ``days`` says what is allowed, including this registry's own maximum."""
        limit = (info.context or {}).get("max_share_days")
        try:
            days = handler(value)
        except ValueError:
            days = 0
        if days is not None and (days < 1 or (limit is not None and days > limit)):
            bound = f"from 1 to {limit}" if limit is not None else "of at least 1"
            raise PydanticCustomError("days", f"must be a whole number {bound}")
        return days
