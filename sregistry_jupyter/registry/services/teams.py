"""Teams, their members and their invitations.

Teams exist so that collection owners can find the people they may grant roles to (``access.may_grant_role``).
An open team takes anyone who asks; an invite-only team takes whoever holds an invitation. An invitation
code is ``<team id>.<invitation id>.<secret>``: the ids find the row, only the secret's SHA-256 is stored,
and the comparison is constant-time. A code works once and expires; using it is a conditional update, so
two people racing with one code cannot both get in. A team always keeps an owner.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .. import tokens
from ..access import (
    Action,
    Person,
    Principal,
    TeamAction,
    TeamRole,
    can,
    can_team,
    decide_team,
    scope_refusal,
    team_role,
    team_scope_refusal,
)
from ..errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from ..names import MAX_ROW_ID, validate_name, validate_username
from ..orm import Invitation, Team, TeamMember, User, utcnow
from . import audit
from .collections import MAX_DESCRIPTION, require_user
from .rows import holders, insert_unique, is_last_owner
from .users import get_user

TEAM_NAME_MAX = 64
INVITATION_RE = re.compile(r"(\d{1,10})\.(\d{1,10})\.([A-Za-z0-9_-]{43})")
UNKNOWN_INVITATION = "no such invitation: check the link, or ask a team owner for a new one"
REFUSALS = {
    TeamAction.JOIN: "you may not join team {team!r}",
    TeamAction.ACCEPT: "you may not accept invitations into team {team!r}",
    TeamAction.LEAVE: "you are not a member of team {team!r}",
    TeamAction.MANAGE: "only the owners of team {team!r} and the registry's staff may manage it",
}


@dataclass(frozen=True)
class Membership:
    user: User
    role: TeamRole


def validate_team_name(name: object) -> str:
    if not isinstance(name, str) or len(name) > TEAM_NAME_MAX:
        raise InvalidInput(f"a team name is a string of at most {TEAM_NAME_MAX} characters")
    return validate_name(name, "team name")


def _description(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise InvalidInput(f"a description is a string of at most {MAX_DESCRIPTION} characters")
    return value


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"'{name}' must be true or false")
    return value


def team_role_value(value: object) -> TeamRole:
    if value not in tuple(TeamRole):
        raise InvalidInput(f"a team role is one of {', '.join(TeamRole)}")
    return TeamRole(value)


def find_team(session: Session, name: str) -> Team | None:
    return session.scalar(select(Team).where(Team.name == name))


def get_team(session: Session, principal: Principal, name: str, action: TeamAction = TeamAction.SEE) -> Team:
    """The team, if ``principal`` may perform ``action`` on it; teams are shown to signed-in users only."""
    require_user(principal)
    scoped = team_scope_refusal(principal, action)
    if scoped is not None:
        raise Forbidden(scoped)
    validate_team_name(name)
    team = find_team(session, name)
    if team is None:
        raise NotFound(f"no team {name!r}")
    if not can_team(session, principal, action, team):
        raise Forbidden(_refusal(principal, action, team))
    return team


def _refusal(principal: Principal, action: TeamAction, team: Team) -> str:
    scoped = team_scope_refusal(principal, action)
    if scoped is not None:
        return scoped
    if action is TeamAction.JOIN and not team.open:
        return f"team {team.name!r} is invite-only: ask one of its owners for an invitation"
    return REFUSALS[action].format(team=team.name)


def list_teams(session: Session, principal: Principal) -> list[Team]:
    require_user(principal)
    teams = session.scalars(select(Team).order_by(Team.name)).all()
    return [team for team in teams if can_team(session, principal, TeamAction.SEE, team)]


def memberships(session: Session, team: Team) -> list[Membership]:
    """The team's members, owners first, then by name."""
    rows = holders(session, TeamMember, TeamMember.team_id, team.id)
    return [Membership(user, TeamRole(role)) for user, role in rows]


def insert_team(session: Session, name: str, owner: Person, *, description: str = "", open_: bool = False) -> Team:
    """Create a team owned by ``owner``, without asking the policy (callers have done so)."""
    team = insert_unique(
        session,
        Team(name=validate_team_name(name), description=_description(description), open=_flag(open_, "open")),
        f"team {name!r} already exists",
    )
    grant(session, team, owner, TeamRole.OWNER)
    return team


def create_team(
    session: Session, principal: Principal, name: str, *, description: str = "", open_: bool = False
) -> Team:
    user = require_user(principal)
    validate_team_name(name)
    if not can(session, principal, Action.CREATE_TEAM):
        raise Forbidden(
            scope_refusal(principal, Action.CREATE_TEAM) or "only the registry's staff may create teams here; ask them"
        )
    team = insert_team(session, name, user, description=description, open_=open_)
    audit.record(session, "team.create", principal, detail={"team": name, "open": team.open})
    return team


def update_team(
    session: Session,
    principal: Principal,
    name: str,
    *,
    description: str | None = None,
    open_: bool | None = None,
) -> Team:
    team = get_team(session, principal, name, TeamAction.MANAGE)
    if description is not None:
        team.description = _description(description)
    if open_ is not None:
        team.open = _flag(open_, "open")
    audit.record(session, "team.update", principal, detail={"team": name, "open": team.open})
    return team


def delete_team(session: Session, principal: Principal, name: str) -> None:
    """Delete a team; its invitations go with it, and nobody loses a collection role they already hold."""
    team = get_team(session, principal, name, TeamAction.MANAGE)
    session.delete(team)
    audit.record(session, "team.delete", principal, detail={"team": name})


def grant(session: Session, team: Team, user: Person, role: TeamRole = TeamRole.MEMBER) -> TeamMember:
    """Add ``user`` to ``team`` with ``role``, without asking the policy (callers have done so)."""
    return insert_unique(
        session,
        TeamMember(team_id=team.id, user_id=user.id, role=role.value),
        f"{user.name} is already a member of team {team.name!r}",
    )


def _member_row(session: Session, team: Team, user: User) -> TeamMember:
    row = session.scalar(select(TeamMember).where(TeamMember.team_id == team.id, TeamMember.user_id == user.id))
    if row is None:
        raise NotFound(f"{user.name} is not a member of team {team.name!r}")
    return row


def _keep_an_owner(session: Session, team: Team, row: TeamMember) -> None:
    """Refuse to remove or demote the team's last owner (the team row is locked so two owners cannot
    remove each other at once)."""
    if is_last_owner(session, Team, TeamMember, TeamMember.team_id, row):
        raise Conflict(f"team {team.name!r} must keep an owner: make someone else an owner first, or delete the team")


def add_member(
    session: Session, principal: Principal, team_name: str, username: str, role: TeamRole = TeamRole.MEMBER
) -> Membership:
    team = get_team(session, principal, team_name, TeamAction.MANAGE)
    user = get_user(session, validate_username(username))
    grant(session, team, user, role)
    audit.record(session, "team.add-member", principal, detail={"team": team.name, "user": user.name, "role": role})
    return Membership(user, role)


def set_member_role(
    session: Session, principal: Principal, team_name: str, username: str, role: TeamRole
) -> Membership:
    team = get_team(session, principal, team_name, TeamAction.MANAGE)
    user = get_user(session, validate_username(username))
    row = _member_row(session, team, user)
    if role is not TeamRole.OWNER:
        _keep_an_owner(session, team, row)
    row.role = role.value
    audit.record(session, "team.set-role", principal, detail={"team": team.name, "user": user.name, "role": role})
    return Membership(user, role)


def remove_member(session: Session, principal: Principal, team_name: str, username: str) -> None:
    """Owners and staff remove anyone; a member removing themselves is leaving."""
    me = require_user(principal)
    action = TeamAction.LEAVE if username == me.name else TeamAction.MANAGE
    team = get_team(session, principal, team_name, action)
    user = get_user(session, validate_username(username))
    row = _member_row(session, team, user)
    _keep_an_owner(session, team, row)
    session.delete(row)
    verb = "team.leave" if action is TeamAction.LEAVE else "team.remove-member"
    audit.record(session, verb, principal, detail={"team": team.name, "user": user.name})


def leave_team(session: Session, principal: Principal, team_name: str) -> None:
    remove_member(session, principal, team_name, require_user(principal).name)


def join_team(session: Session, principal: Principal, team_name: str) -> Team:
    """Join an open team; joining a team one is already in changes nothing."""
    user = require_user(principal)
    team = get_team(session, principal, team_name)
    if team_role(session, user, team) is not None:
        return team
    if not decide_team(principal, TeamAction.JOIN, team, None):
        raise Forbidden(_refusal(principal, TeamAction.JOIN, team))
    grant(session, team, user)
    audit.record(session, "team.join", principal, detail={"team": team.name})
    return team


def invitation_link(code: str) -> str:
    return f"/invitations/{code}"


def create_invitation(session: Session, principal: Principal, team_name: str, days: float) -> tuple[Invitation, str]:
    """A new invitation and its code, which is returned once and never stored."""
    team = get_team(session, principal, team_name, TeamAction.MANAGE)
    secret = secrets.token_urlsafe(32)
    row = Invitation(
        team_id=team.id,
        code_hash=tokens.hash_token(secret),
        created_by_id=require_user(principal).id,
        expires_at=utcnow() + dt.timedelta(days=days),
    )
    session.add(row)
    session.flush()
    audit.record(session, "team.invite", principal, detail={"team": team.name, "invitation": row.id})
    return row, f"{team.id}.{row.id}.{secret}"


def list_invitations(session: Session, principal: Principal, team_name: str) -> list[Invitation]:
    """The team's invitations that can still be used, newest first."""
    team = get_team(session, principal, team_name, TeamAction.MANAGE)
    return list(
        session.scalars(
            select(Invitation)
            .where(Invitation.team_id == team.id, Invitation.used_at.is_(None), Invitation.expires_at > utcnow())
            .order_by(Invitation.id.desc())
        )
    )


def revoke_invitation(session: Session, principal: Principal, team_name: str, invitation_id: int) -> None:
    team = get_team(session, principal, team_name, TeamAction.MANAGE)
    row = session.get(Invitation, invitation_id) if 0 < invitation_id <= MAX_ROW_ID else None
    if row is None or row.team_id != team.id:
        raise NotFound(f"team {team.name!r} has no invitation {invitation_id}")
    if row.used_at is not None:
        raise Conflict(f"invitation {invitation_id} was already used; remove the member instead")
    session.delete(row)
    audit.record(session, "team.revoke-invitation", principal, detail={"team": team.name, "invitation": row.id})


def _usable_invitation(session: Session, code: object) -> tuple[Invitation, Team]:
    """The invitation ``code`` names and its team, if it can still be used; else a clear refusal."""
    match = INVITATION_RE.fullmatch(code) if isinstance(code, str) else None
    if match is None:
        raise NotFound(UNKNOWN_INVITATION)
    team_id, invitation_id, secret = int(match.group(1)), int(match.group(2)), match.group(3)
    if not (0 < team_id <= MAX_ROW_ID and 0 < invitation_id <= MAX_ROW_ID):
        raise NotFound(UNKNOWN_INVITATION)
    row = session.get(Invitation, invitation_id)
    if row is None or row.team_id != team_id or not tokens.matches(secret, row.code_hash):
        if row is None and session.get(Team, team_id) is None:
            raise InvalidInput("the team this invitation was for has been deleted")
        raise NotFound(UNKNOWN_INVITATION)
    if row.used_at is not None:
        raise InvalidInput("this invitation was already used: an invitation works once; ask for a new one")
    if row.expires_at <= utcnow():
        raise InvalidInput(f"this invitation expired on {row.expires_at:%Y-%m-%d %H:%M} UTC; ask for a new one")
    return row, session.get_one(Team, team_id)


def invitation_preview(session: Session, code: str) -> Team:
    """The team a still-usable invitation leads to, for a landing page shown before signing in."""
    return _usable_invitation(session, code)[1]


def accept_invitation(session: Session, principal: Principal, code: str) -> Team:
    """Join the invitation's team; the code is used up unless the user was already a member."""
    if principal.user is None:
        raise Unauthorized("sign in to accept an invitation")
    user = principal.user
    row, team = _usable_invitation(session, code)
    role = team_role(session, user, team)
    if not decide_team(principal, TeamAction.ACCEPT, team, role):
        raise Forbidden(_refusal(principal, TeamAction.ACCEPT, team))
    if role is not None:
        return team
    now = utcnow()
    used = session.execute(
        update(Invitation)
        .where(Invitation.id == row.id, Invitation.used_at.is_(None), Invitation.expires_at > now)
        .values(used_at=now, used_by_id=user.id)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:
        raise InvalidInput("this invitation was already used: an invitation works once; ask for a new one")
    grant(session, team, user)
    audit.record(session, "team.accept-invitation", principal, detail={"team": team.name, "invitation": row.id})
    return team


@dataclass(frozen=True)
class TeamSummary:
    """A team as a list shows it: its size and the viewer's own role in it."""

    team: Team
    members: int
    role: TeamRole | None


def list_team_page(
    session: Session, principal: Principal, *, offset: int = 0, limit: int = 50
) -> tuple[list[TeamSummary], int]:
    """One page of the teams ``principal`` may see, by name, and how many there are in all."""
    me = require_user(principal)
    scoped = team_scope_refusal(principal, TeamAction.SEE)
    if scoped is not None:
        raise Forbidden(scoped)
    total = session.scalar(select(func.count(Team.id))) or 0
    size = select(func.count(TeamMember.id)).where(TeamMember.team_id == Team.id).correlate(Team).scalar_subquery()
    mine = (
        select(TeamMember.role)
        .where(TeamMember.team_id == Team.id, TeamMember.user_id == me.id)
        .correlate(Team)
        .scalar_subquery()
    )
    rows = session.execute(select(Team, size, mine).order_by(Team.name).offset(offset).limit(limit))
    return [TeamSummary(team, count or 0, TeamRole(role) if role else None) for team, count, role in rows], total
