"""What the registry's staff read and change through the native API: accounts (disabled or not, staff or
not, robots and their tokens) and the audit trail."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from . import rules
from .base import Answer, Body, Timestamp
from .people import User, one_of
from .values import Count, Username, documented

ACCOUNT_KINDS = ("admin", "staff", "robot", "user")


class Account(User):
    """An account as the staff see it."""

    kind: str = one_of(ACCOUNT_KINDS, "The account's strongest standing: `admin`, `staff`, `robot` or `user`.")
    disabled: Timestamp | None = Field(None, description="When the account was disabled; null if it works.")
    tokens: Count = Field(0, description="How many unrevoked tokens the account holds.")


class AccountPage(Answer):
    """One page of accounts, by name, and where it lies among all that match."""

    items: list[Account]
    page: int = Field(ge=1)
    per_page: int = Field(ge=1)
    total: Count
    pages: Count


class UpdateAccount(Body):
    """Absent or null fields are left as they are."""

    disabled: bool | None = Field(
        None, description="Disable the account (its sessions and tokens stop working at once) or enable it again."
    )
    staff: bool | None = Field(None, description="Make the account staff or an ordinary one (administrators only).")


class CreateRobot(Body):
    name: str = documented("The robot account's name.", rules.USERNAME_PATTERN, examples=["ci-bot"])


class CreateRobotToken(Body):
    scope: str = Field("read", json_schema_extra={"enum": list(rules.SCOPES)})


class RobotToken(Answer):
    """A new token for a robot account."""

    user: Username
    scope: str = one_of(rules.SCOPES)
    token: str = documented("The bearer token. It is never shown again.", rules.TOKEN_PATTERN)


class AuditEvent(Answer):
    """One event of the audit trail."""

    id: int
    at: Timestamp
    action: str
    user: str | None = Field(None, description="Who did it; null for someone not signed in.")
    collection: str | None = None
    container: str | None = None
    tag: str | None = None
    digest: str | None = None
    size: int | None = None
    remote_addr: str | None = None
    detail: dict[str, Any] | None = None


class AuditPage(Answer):
    """One page of the audit trail, newest first, and where it lies among all events that match."""

    items: list[AuditEvent]
    page: int = Field(ge=1)
    per_page: int = Field(ge=1)
    total: Count
    pages: Count
