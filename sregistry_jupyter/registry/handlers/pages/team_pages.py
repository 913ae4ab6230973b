"""The teams pages: every team, a team with its members, and the forms that change them.

Teams are what lets a collection owner find the people they may grant roles to. Each form posts to its
own path and comes back to the team's page, where the outcome is shown; what the viewer may do there
(join, leave, invite, manage members) is asked of ``access.py``, never decided here. An invitation link
exists only on the page that made it: the registry keeps nothing but its hash.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import quote

from sqlalchemy.orm import Session

from ...access import Action, Principal, TeamAction, TeamRole, can, decide_team, team_role
from ...errors import Conflict, Forbidden, InvalidInput, NotFound
from ...names import row_id
from ...orm import Invitation, Team
from ...services import teams
from ...services.browse import Page
from .base import PageHandler
from .listing import page_links

TEAMS_PER_PAGE = 50
MEMBERS_PER_PAGE = 50
SEGMENT = r"([^/]+)"
REFUSALS = (Conflict, Forbidden, InvalidInput, NotFound)


def team_path(name: str) -> str:
    return f"/teams/{quote(name, safe='')}"


@dataclass(frozen=True)
class TeamList:
    rows: list[teams.TeamSummary]
    page: Page
    may_create: bool


def team_list(session: Session, principal: Principal, wanted: Page) -> TeamList:
    rows, total = teams.list_team_page(session, principal, offset=wanted.offset, limit=wanted.size)
    return TeamList(rows, Page(wanted.number, wanted.size, total), can(session, principal, Action.CREATE_TEAM))


@dataclass(frozen=True)
class TeamView:
    """A team's page: who is in it, the viewer's role, and what the viewer may do there."""

    team: Team
    members: list[teams.Membership]
    owners: list[teams.Membership]
    page: Page
    role: TeamRole | None
    may_join: bool
    may_leave: bool
    may_manage: bool
    invitations: list[Invitation] = field(default_factory=list)


def team_view(session: Session, principal: Principal, name: str, wanted: Page) -> TeamView:
    team = teams.get_team(session, principal, name)
    everyone = teams.memberships(session, team)
    role = team_role(session, principal.user, team)
    may_manage = decide_team(principal, TeamAction.MANAGE, team, role)
    return TeamView(
        team=team,
        members=everyone[wanted.offset : wanted.offset + wanted.size],
        owners=[m for m in everyone if m.role is TeamRole.OWNER],
        page=Page(wanted.number, wanted.size, len(everyone)),
        role=role,
        may_join=role is None and decide_team(principal, TeamAction.JOIN, team, role),
        may_leave=role is not None and decide_team(principal, TeamAction.LEAVE, team, role),
        may_manage=may_manage,
        invitations=teams.list_invitations(session, principal, name) if may_manage else [],
    )


class TeamsPage(PageHandler):
    """Every team, and a form to create one for those the policy lets create teams."""

    async def get(self) -> None:
        await self.show()

    async def show(self, *, error: str | None = None, status: int = 200, values: dict | None = None) -> None:
        self.require_person()
        found = await self.read_db(team_list, self.principal, Page(self.page_number(), TEAMS_PER_PAGE, 0))
        self.set_status(status)
        self.render(
            "teams.html",
            found=found,
            error=error,
            values=values or {},
            team_path=team_path,
            page=found.page,
            links=page_links("/teams", {}, found.page),
            noun="team",
        )

    async def submit(self, form: dict[str, str]) -> None:
        self.require_person()
        name = form.get("name", "").strip()
        try:
            team = await self.write_db(
                teams.create_team,
                self.principal,
                name,
                description=form.get("description", ""),
                open_=form.get("open") == "1",
            )
        except REFUSALS as error:
            await self.show(error=error.message, status=error.status, values=form)
            return
        self.redirect(team_path(team.name) + "?done=created", status=303)


NOTICES = {
    "created": "Team created. Invite people with an invitation link, or make the team open.",
    "joined": "You joined the team.",
    "added": "Member added.",
    "role": "Role changed.",
    "removed": "Member removed.",
    "revoked": "Invitation revoked.",
    "updated": "Team settings saved.",
}


class TeamShowing(PageHandler):
    """Shows a team's page: its owners and members, and what the viewer may do."""

    async def show(
        self,
        name: str,
        *,
        notice: str | None = None,
        error: str | None = None,
        invitation: tuple[str, dt.datetime] | None = None,
        status: int = 200,
    ) -> None:
        self.require_person()
        view = await self.read_db(team_view, self.principal, name, Page(self.page_number(), MEMBERS_PER_PAGE, 0))
        self.set_status(status)
        self.render(
            "team.html",
            view=view,
            notice=notice,
            error=error,
            invitation=invitation,
            team_path=team_path,
            roles=list(TeamRole),
            page=view.page,
            links=page_links(team_path(name), {}, view.page),
            noun="member",
        )


class TeamPage(TeamShowing):
    async def get(self, name: str) -> None:
        notice = NOTICES.get(self.get_query_argument("done", ""))
        await self.show(name, notice=notice)


class TeamFormPage(TeamShowing):
    """Base of the forms a team page posts: each does one service call, then shows the team again."""

    done = "updated"

    async def submit(self, form: dict[str, str], name: str, *args: str) -> None:
        self.require_person()
        try:
            await self.change(form, name, *args)
        except REFUSALS as error:
            await self.show(name, error=error.message, status=error.status)
            return
        if self._finished:
            return
        self.redirect(await self.after(name), status=303)

    async def change(self, form: dict[str, str], name: str, *args: str) -> None:
        raise NotImplementedError

    async def after(self, name: str) -> str:
        return team_path(name) + f"?done={self.done}"


class JoinTeam(TeamFormPage):
    done = "joined"

    async def change(self, form: dict[str, str], name: str) -> None:
        await self.write_db(teams.join_team, self.principal, name)


class LeaveTeam(TeamFormPage):
    async def change(self, form: dict[str, str], name: str) -> None:
        await self.write_db(teams.leave_team, self.principal, name)

    async def after(self, name: str) -> str:
        return "/teams"


class InviteToTeam(TeamFormPage):
    """Makes a single-use, expiring invitation and shows its link once, to copy."""

    async def change(self, form: dict[str, str], name: str) -> None:
        row, code = await self.write_db(teams.create_invitation, self.principal, name, self.registry.invitation_days)
        await self.show(name, invitation=(self.base_url() + teams.invitation_link(code), row.expires_at))


class RevokeInvitation(TeamFormPage):
    done = "revoked"

    async def change(self, form: dict[str, str], name: str, invitation_id: str) -> None:
        await self.write_db(teams.revoke_invitation, self.principal, name, row_id(invitation_id, "invitation"))


class AddTeamMember(TeamFormPage):
    done = "added"

    async def change(self, form: dict[str, str], name: str) -> None:
        role = teams.team_role_value(form.get("role", TeamRole.MEMBER.value))
        await self.write_db(teams.add_member, self.principal, name, form.get("username", "").strip(), role)


class SetTeamRole(TeamFormPage):
    done = "role"

    async def change(self, form: dict[str, str], name: str, username: str) -> None:
        role = teams.team_role_value(form.get("role"))
        await self.write_db(teams.set_member_role, self.principal, name, username, role)


class RemoveTeamMember(TeamFormPage):
    done = "removed"

    async def change(self, form: dict[str, str], name: str, username: str) -> None:
        await self.write_db(teams.remove_member, self.principal, name, username)


class UpdateTeam(TeamFormPage):
    async def change(self, form: dict[str, str], name: str) -> None:
        await self.write_db(
            teams.update_team,
            self.principal,
            name,
            description=form.get("description", ""),
            open_=form.get("open") == "1",
        )


class DeleteTeam(TeamFormPage):
    async def change(self, form: dict[str, str], name: str) -> None:
        if form.get("confirm", "") != name:
            raise InvalidInput(f"type the team's name, {name}, to delete it")
        await self.write_db(teams.delete_team, self.principal, name)

    async def after(self, name: str) -> str:
        return "/teams"


def routes() -> list[tuple[str, type]]:
    team = rf"/teams/{SEGMENT}"
    return [
        (r"/teams", TeamsPage),
        (team, TeamPage),
        (rf"{team}/join", JoinTeam),
        (rf"{team}/leave", LeaveTeam),
        (rf"{team}/invitations", InviteToTeam),
        (rf"{team}/invitations/(\d+)/revoke", RevokeInvitation),
        (rf"{team}/members", AddTeamMember),
        (rf"{team}/members/{SEGMENT}/role", SetTeamRole),
        (rf"{team}/members/{SEGMENT}/remove", RemoveTeamMember),
        (rf"{team}/settings", UpdateTeam),
        (rf"{team}/delete", DeleteTeam),
    ]
