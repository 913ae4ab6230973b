"""The native API for people working together: teams and their invitations, roles in collections, stars
and share links (``/api/v1``), and the share links themselves (``/shares/<token>``, no sign-in needed).

Every decision is the services' (and so ``access.py``'s); these handlers only read requests (bodies
through the shared models) and shape answers. Each unit of database work is a function here that returns
the answer's model, built while the session is open, so nothing the session loaded is touched after it
closes. The paths are in ``native``'s route table.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ... import models
from .. import credentials
from ..access import Principal, Role, TeamRole
from ..names import row_id
from ..orm import Team, utcnow
from ..services import collections, members, shares, stars, teams
from .api import PREFIX, ApiHandler
from .serialize import (
    collection_member_model,
    collection_model,
    invitation_fields,
    invitation_model,
    share_fields,
    share_model,
    team_member_model,
    team_model,
)
from .transfer import Download, DownloadHandler

# Teams.


def team_body(session: Session, principal: Principal, team: Team) -> models.Team:
    """A team with its members and the caller's own role in it."""
    found = teams.memberships(session, team)
    me = principal.user
    return team_model(team, found, next((m.role for m in found if me and m.user.id == me.id), None))


def team_list(session: Session, principal: Principal) -> models.TeamList:
    return models.TeamList.model_construct(
        items=[team_body(session, principal, t) for t in teams.list_teams(session, principal)]
    )


def team_detail(session: Session, principal: Principal, name: str) -> models.Team:
    return team_body(session, principal, teams.get_team(session, principal, name))


def new_team(session: Session, principal: Principal, body: models.CreateTeam) -> models.Team:
    team = teams.create_team(session, principal, body.name, description=body.description, open_=body.open)
    return team_body(session, principal, team)


def change_team(session: Session, principal: Principal, name: str, body: models.UpdateTeam) -> models.Team:
    team = teams.update_team(session, principal, name, description=body.description, open_=body.open)
    return team_body(session, principal, team)


def team_members(session: Session, principal: Principal, name: str) -> models.TeamMemberList:
    team = teams.get_team(session, principal, name)
    return models.TeamMemberList.model_construct(items=[team_member_model(m) for m in teams.memberships(session, team)])


def add_team_member(session: Session, principal: Principal, name: str, user: str, role: TeamRole) -> models.TeamMember:
    return team_member_model(teams.add_member(session, principal, name, user, role))


def set_team_role(session: Session, principal: Principal, name: str, user: str, role: TeamRole) -> models.TeamMember:
    return team_member_model(teams.set_member_role(session, principal, name, user, role))


def join(session: Session, principal: Principal, name: str) -> models.Team:
    return team_body(session, principal, teams.join_team(session, principal, name))


def pending_invitations(session: Session, principal: Principal, name: str) -> models.InvitationList:
    return models.InvitationList.model_construct(
        items=[invitation_model(i, name) for i in teams.list_invitations(session, principal, name)]
    )


def new_invitation(session: Session, principal: Principal, name: str, days: float) -> tuple[dict[str, Any], str]:
    """The new invitation's fields and its code, which exists only in this answer."""
    row, code = teams.create_invitation(session, principal, name, days)
    return invitation_fields(row, name), code


def invitation_team(session: Session, code: str) -> models.InvitationPreview:
    team = teams.invitation_preview(session, code)
    return models.InvitationPreview.model_construct(team=team.name, description=team.description)


def accept(session: Session, principal: Principal, code: str) -> models.Team:
    return team_body(session, principal, teams.accept_invitation(session, principal, code))


class TeamsHandler(ApiHandler):
    async def get(self) -> None:
        self.write_json(await self.read_db(team_list, self.principal))

    async def post(self) -> None:
        created = await self.write_db(new_team, self.principal, self.body_as(models.CreateTeam))
        self.set_header("Location", f"{PREFIX}/teams/{created.name}")
        self.write_json(created, 201)


class TeamHandler(ApiHandler):
    async def get(self, name: str) -> None:
        self.write_json(await self.read_db(team_detail, self.principal, name))

    async def patch(self, name: str) -> None:
        self.write_json(await self.write_db(change_team, self.principal, name, self.body_as(models.UpdateTeam)))

    async def delete(self, name: str) -> None:
        await self.write_db(teams.delete_team, self.principal, name)
        self.no_content()


class TeamMembersHandler(ApiHandler):
    async def get(self, name: str) -> None:
        self.write_json(await self.read_db(team_members, self.principal, name))

    async def post(self, name: str) -> None:
        body = self.body_as(models.AddTeamMember)
        role = teams.team_role_value(body.role)
        self.write_json(await self.write_db(add_team_member, self.principal, name, body.user, role), 201)


class TeamMemberHandler(ApiHandler):
    async def patch(self, name: str, user: str) -> None:
        role = teams.team_role_value(self.body_as(models.SetTeamRole).role)
        self.write_json(await self.write_db(set_team_role, self.principal, name, user, role))

    async def delete(self, name: str, user: str) -> None:
        await self.write_db(teams.remove_member, self.principal, name, user)
        self.no_content()


class TeamJoinHandler(ApiHandler):
    async def post(self, name: str) -> None:
        self.write_json(await self.write_db(join, self.principal, name))


class TeamLeaveHandler(ApiHandler):
    async def post(self, name: str) -> None:
        await self.write_db(teams.leave_team, self.principal, name)
        self.no_content()


class TeamInvitationsHandler(ApiHandler):
    async def get(self, name: str) -> None:
        self.write_json(await self.read_db(pending_invitations, self.principal, name))

    async def post(self, name: str) -> None:
        shown, code = await self.write_db(new_invitation, self.principal, name, self.registry.invitation_days)
        path = teams.invitation_link(code)
        created = models.NewInvitation.model_construct(**shown, code=code, path=path, url=self.base_url() + path)
        self.write_json(created, 201)


class TeamInvitationHandler(ApiHandler):
    async def delete(self, name: str, invitation_id: str) -> None:
        await self.write_db(teams.revoke_invitation, self.principal, name, row_id(invitation_id, "team invitation"))
        self.no_content()


class InvitationHandler(ApiHandler):
    """``GET`` tells whoever holds a code which team it leads to; ``POST`` accepts it."""

    async def get(self, code: str) -> None:
        self.write_json(await self.read_db(invitation_team, code))

    async def post(self, code: str) -> None:
        self.write_json(await self.write_db(accept, self.principal, code))


# Roles in collections, and stars.


def collection_members(session: Session, principal: Principal, collection: str) -> models.CollectionMemberList:
    return models.CollectionMemberList.model_construct(
        items=[collection_member_model(m) for m in members.list_members(session, principal, collection)]
    )


def add_collection_member(
    session: Session, principal: Principal, collection: str, user: str, role: Role
) -> models.CollectionMember:
    return collection_member_model(members.add_member(session, principal, collection, user, role))


def set_collection_role(
    session: Session, principal: Principal, collection: str, user: str, role: Role
) -> models.CollectionMember:
    return collection_member_model(members.set_role(session, principal, collection, user, role))


def star(session: Session, principal: Principal, collection: str) -> models.Collection:
    """Star a collection; the answer counts the star just added."""
    return collection_model(collections.summarise(session, stars.star(session, principal, collection)))


def unstar(session: Session, principal: Principal, collection: str) -> models.Collection:
    return collection_model(collections.summarise(session, stars.unstar(session, principal, collection)))


def starred(session: Session, principal: Principal) -> models.CollectionList:
    return models.CollectionList.model_construct(
        items=[collection_model(collections.summarise(session, c)) for c in stars.starred(session, principal)]
    )


class CollectionMembersHandler(ApiHandler):
    async def get(self, collection: str) -> None:
        self.write_json(await self.read_db(collection_members, self.principal, collection))

    async def post(self, collection: str) -> None:
        body = self.body_as(models.AddCollectionMember)
        role = members.role_value(body.role)
        self.write_json(await self.write_db(add_collection_member, self.principal, collection, body.user, role), 201)


class CollectionMemberHandler(ApiHandler):
    async def patch(self, collection: str, user: str) -> None:
        role = members.role_value(self.body_as(models.SetCollectionRole).role)
        self.write_json(await self.write_db(set_collection_role, self.principal, collection, user, role))

    async def delete(self, collection: str, user: str) -> None:
        await self.write_db(members.remove_member, self.principal, collection, user)
        self.no_content()


class StarHandler(ApiHandler):
    async def put(self, collection: str) -> None:
        self.write_json(await self.write_db(star, self.principal, collection))

    async def delete(self, collection: str) -> None:
        self.write_json(await self.write_db(unstar, self.principal, collection))


class StarsHandler(ApiHandler):
    async def get(self) -> None:
        self.write_json(await self.read_db(starred, self.principal))


# Share links.


def share_list(
    session: Session, principal: Principal, collection: str, container: str, ref: str, arch: str | None
) -> models.ShareList:
    image, found = shares.list_shares(session, principal, collection, container, ref, arch)
    now = utcnow()
    return models.ShareList.model_construct(items=[share_model(s, image, now) for s in found])


def new_share(
    session: Session, principal: Principal, collection: str, container: str, ref: str, days: int, arch: str | None
) -> tuple[dict[str, Any], str]:
    """The new link's fields and its token, which exists only in this answer."""
    image, row, token = shares.create_share(session, principal, collection, container, ref, days=days, arch=arch)
    return share_fields(row, image, utcnow()), token


def shared_download(session: Session, token: str) -> tuple[int, Download]:
    """The share link ``token`` names (its id, to count the download on it) and what its image's download needs."""
    share, image = shares.open_share(session, token)
    return share.id, Download.of(image)


class SharesHandler(ApiHandler):
    async def get(self, collection: str, container: str, ref: str) -> None:
        self.write_json(
            await self.read_db(share_list, self.principal, collection, container, ref, self.arch_argument())
        )

    async def post(self, collection: str, container: str, ref: str) -> None:
        limit = self.registry.max_share_days
        days = shares.share_days(self.body_as(models.CreateShare, max_share_days=limit).days, limit)
        shown, token = await self.write_db(
            new_share, self.principal, collection, container, ref, days, self.arch_argument()
        )
        path = shares.share_link(token)
        created = models.NewShare.model_construct(**shown, token=token, path=path, url=self.base_url() + path)
        self.write_json(created, 201)


class ShareHandler(ApiHandler):
    async def delete(self, collection: str, container: str, ref: str, share_id: str) -> None:
        await self.write_db(
            shares.revoke_share,
            self.principal,
            collection,
            container,
            ref,
            row_id(share_id, "share link"),
            self.arch_argument(),
        )
        self.no_content()


class ShareDownloadHandler(DownloadHandler):
    """``GET``/``HEAD`` an image through a share link: no sign-in, ranges honoured, downloads counted.

    The link is the whole authorisation, so whatever credentials come with the request are not looked at:
    the download is anonymous, and its pull is counted on the link and on the image.
    """

    async def identify(self) -> Principal:
        return await credentials.from_link(self.registry, "")

    async def head(self, token: str) -> None:  # type: ignore[override]
        _, download = await self.read_db(shared_download, token)
        await self.send(download)

    async def get(self, token: str) -> None:  # type: ignore[override]
        share_id, download = await self.read_db(shared_download, token)
        await self.send(download, share_id=share_id)
