"""Who uses the registry: users and their tokens, teams with members and invitations, and roles in
collections."""

from __future__ import annotations

import enum

from pydantic import Field

from . import rules
from .base import Answer, Timestamp
from .values import RowId, TeamName, Username, documented


class Role(enum.StrEnum):
    """A role in a collection: owners push and manage, contributors see and pull."""

    OWNER = "owner"
    CONTRIBUTOR = "contributor"


class TeamRole(enum.StrEnum):
    OWNER = "owner"
    MEMBER = "member"


def one_of(values: type[enum.StrEnum] | tuple[str, ...], description: str | None = None) -> object:
    """A string documented as one of ``values``, read as any string (a newer registry may add a value)."""
    return documented(description or "", enum=[str(v) for v in values])


class User(Answer):
    name: Username
    admin: bool = False
    staff: bool = False
    robot: bool = False
    created: Timestamp | None = None


class Token(Answer):
    """An API token; the token string itself is shown only once, on creation."""

    id: int
    name: str = Field(json_schema_extra={"maxLength": rules.MAX_TOKEN_NAME})
    scope: str = one_of(rules.SCOPES, "What the token may do: `read` pulls, `write` also pushes, `admin` all.")
    created: Timestamp | None = None
    expires: Timestamp | None = None
    last_used: Timestamp | None = None
    revoked: Timestamp | None = None


class NewToken(Token):
    """A token just created, with its token string."""

    token: str = documented(
        "The bearer token. It is never shown again.",
        rules.TOKEN_PATTERN,
        examples=["sreg_" + "a" * 12 + "_" + "b" * 43],
    )


class TokenList(Answer):
    items: list[Token]


class TeamMember(Answer):
    user: Username
    role: str = one_of(TeamRole)


class TeamMemberList(Answer):
    items: list[TeamMember]


class Team(Answer):
    """A team: the people a collection owner may give roles to."""

    name: TeamName
    description: str = ""
    open: bool = Field(False, description="Anyone may join an open team; others need an invitation.")
    owners: list[Username] = Field(default_factory=list)
    members: list[TeamMember] = Field(default_factory=list, description="Owners first.")
    your_role: str | None = Field(
        None,
        description="The caller's role in the team; null if not a member.",
        json_schema_extra={"enum": [*(r.value for r in TeamRole), None]},
    )
    created: Timestamp | None = None


class TeamList(Answer):
    items: list[Team]


class Invitation(Answer):
    """A pending invitation; its code is shown only on creation."""

    id: RowId
    team: TeamName
    created: Timestamp | None = None
    expires: Timestamp | None = None


class NewInvitation(Invitation):
    """An invitation just created: send its ``url`` to the person invited."""

    code: str = documented("The invitation code. It works once and is never shown again.", rules.INVITATION_PATTERN)
    path: str = Field(description="The invitation page's URL path on the registry.")
    url: str = Field(description="The invitation page's absolute URL. It is never shown again.")


class InvitationList(Answer):
    items: list[Invitation]


class InvitationPreview(Answer):
    """The team a usable invitation leads to."""

    team: TeamName
    description: str = ""


class CollectionMember(Answer):
    user: Username
    role: str = one_of(Role)


class CollectionMemberList(Answer):
    items: list[CollectionMember]
