"""The native API for people working together: teams and their invitations, roles in collections, stars
and share links (``/api/v1``), and the share links themselves (``/shares/<token>``, no sign-in needed).

Every decision is the services' (and so ``access.py``'s); these handlers only read requests and shape
answers. Each unit of database work is a function here that returns the answer's JSON, so nothing the
session loaded is touched after it closes. The routes are registered before ``api.routes()``, whose
catch-all would otherwise answer them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from .. import credentials
from ..access import Principal, Role, TeamRole
from ..errors import InvalidInput
from ..names import row_id
from ..orm import Team, utcnow
from ..services import collections, members, shares, stars, teams
from .api import PREFIX, SEGMENT, ApiHandler
from .serialize import collection_json, invitation_json, member_json, share_json, team_json
from .transfer import Download, DownloadHandler

# Teams.


def team_body(session: Session, principal: Principal, team: Team) -> dict[str, Any]:
    """A team with its members and the caller's own role in it."""
    found = teams.memberships(session, team)
    me = principal.user
    return team_json(team, found, next((m.role for m in found if me and m.user.id == me.id), None))


def team_list(session: Session, principal: Principal) -> dict[str, Any]:
    return {"items": [team_body(session, principal, t) for t in teams.list_teams(session, principal)]}


def team_detail(session: Session, principal: Principal, name: str) -> dict[str, Any]:
    return team_body(session, principal, teams.get_team(session, principal, name))


def new_team(session: Session, principal: Principal, name: str, description: str, open_: bool) -> dict[str, Any]:
    team = teams.create_team(session, principal, name, description=description, open_=open_)
    return team_body(session, principal, team)


def change_team(
    session: Session, principal: Principal, name: str, description: str | None, open_: bool | None
) -> dict[str, Any]:
    team = teams.update_team(session, principal, name, description=description, open_=open_)
    return team_body(session, principal, team)


def team_members(session: Session, principal: Principal, name: str) -> dict[str, Any]:
    team = teams.get_team(session, principal, name)
    return {"items": [member_json(m) for m in teams.memberships(session, team)]}


def add_team_member(session: Session, principal: Principal, name: str, user: str, role: TeamRole) -> dict[str, Any]:
    return member_json(teams.add_member(session, principal, name, user, role))


def set_team_role(session: Session, principal: Principal, name: str, user: str, role: TeamRole) -> dict[str, Any]:
    return member_json(teams.set_member_role(session, principal, name, user, role))


def join(session: Session, principal: Principal, name: str) -> dict[str, Any]:
    return team_body(session, principal, teams.join_team(session, principal, name))


def pending_invitations(session: Session, principal: Principal, name: str) -> dict[str, Any]:
    return {"items": [invitation_json(i, name) for i in teams.list_invitations(session, principal, name)]}


def new_invitation(session: Session, principal: Principal, name: str, days: float) -> tuple[dict[str, Any], str]:
    """The new invitation's JSON and its code, which exists only in this answer."""
    row, code = teams.create_invitation(session, principal, name, days)
    return invitation_json(row, name), code


def invitation_team(session: Session, code: str) -> dict[str, Any]:
    team = teams.invitation_preview(session, code)
    return {"team": team.name, "description": team.description}


def accept(session: Session, principal: Principal, code: str) -> dict[str, Any]:
    return team_body(session, principal, teams.accept_invitation(session, principal, code))


class TeamsHandler(ApiHandler):
    async def get(self) -> None:
        self.write_json(await self.read_db(team_list, self.principal))

    async def post(self) -> None:
        body = self.json_body()
        name = self.field(body, "name", str)
        if name is None:
            raise InvalidInput("'name' is required")
        created = await self.write_db(
            new_team,
            self.principal,
            name,
            self.field(body, "description", str, ""),
            self.field(body, "open", bool, False),
        )
        self.set_header("Location", f"{PREFIX}/teams/{created['name']}")
        self.write_json(created, 201)


class TeamHandler(ApiHandler):
    async def get(self, name: str) -> None:
        self.write_json(await self.read_db(team_detail, self.principal, name))

    async def patch(self, name: str) -> None:
        body = self.json_body()
        self.write_json(
            await self.write_db(
                change_team, self.principal, name, self.field(body, "description", str), self.field(body, "open", bool)
            )
        )

    async def delete(self, name: str) -> None:
        await self.write_db(teams.delete_team, self.principal, name)
        self.no_content()


class TeamMembersHandler(ApiHandler):
    async def get(self, name: str) -> None:
        self.write_json(await self.read_db(team_members, self.principal, name))

    async def post(self, name: str) -> None:
        body = self.json_body()
        user = self.field(body, "user", str)
        if user is None:
            raise InvalidInput("'user' is required")
        role = teams.team_role_value(self.field(body, "role", str, "member"))
        self.write_json(await self.write_db(add_team_member, self.principal, name, user, role), 201)


class TeamMemberHandler(ApiHandler):
    async def patch(self, name: str, user: str) -> None:
        role = teams.team_role_value(self.field(self.json_body(), "role", str))
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
        self.write_json({**shown, "code": code, "path": path, "url": self.base_url() + path}, 201)


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


def collection_members(session: Session, principal: Principal, collection: str) -> dict[str, Any]:
    return {"items": [member_json(m) for m in members.list_members(session, principal, collection)]}


def add_collection_member(
    session: Session, principal: Principal, collection: str, user: str, role: Role
) -> dict[str, Any]:
    return member_json(members.add_member(session, principal, collection, user, role))


def set_collection_role(
    session: Session, principal: Principal, collection: str, user: str, role: Role
) -> dict[str, Any]:
    return member_json(members.set_role(session, principal, collection, user, role))


def star(session: Session, principal: Principal, collection: str) -> dict[str, Any]:
    """Star a collection; the answer counts the star just added."""
    return collection_json(collections.summarise(session, stars.star(session, principal, collection)))


def unstar(session: Session, principal: Principal, collection: str) -> dict[str, Any]:
    return collection_json(collections.summarise(session, stars.unstar(session, principal, collection)))


def starred(session: Session, principal: Principal) -> dict[str, Any]:
    return {"items": [collection_json(collections.summarise(session, c)) for c in stars.starred(session, principal)]}


class CollectionMembersHandler(ApiHandler):
    async def get(self, collection: str) -> None:
        self.write_json(await self.read_db(collection_members, self.principal, collection))

    async def post(self, collection: str) -> None:
        body = self.json_body()
        user = self.field(body, "user", str)
        if user is None:
            raise InvalidInput("'user' is required")
        role = members.role_value(self.field(body, "role", str, "contributor"))
        self.write_json(await self.write_db(add_collection_member, self.principal, collection, user, role), 201)


class CollectionMemberHandler(ApiHandler):
    async def patch(self, collection: str, user: str) -> None:
        role = members.role_value(self.field(self.json_body(), "role", str))
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
) -> dict[str, Any]:
    image, found = shares.list_shares(session, principal, collection, container, ref, arch)
    now = utcnow()
    return {"items": [share_json(s, image, now) for s in found]}


def new_share(
    session: Session, principal: Principal, collection: str, container: str, ref: str, days: int, arch: str | None
) -> tuple[dict[str, Any], str]:
    """The new link's JSON and its token, which exists only in this answer."""
    image, row, token = shares.create_share(session, principal, collection, container, ref, days=days, arch=arch)
    return share_json(row, image, utcnow()), token


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
        days = shares.share_days(self.json_body().get("days"), self.registry.max_share_days)
        shown, token = await self.write_db(
            new_share, self.principal, collection, container, ref, days, self.arch_argument()
        )
        path = shares.share_link(token)
        self.write_json({**shown, "token": token, "path": path, "url": self.base_url() + path}, 201)


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


def routes() -> list[tuple[str, type]]:
    team = rf"{PREFIX}/teams/{SEGMENT}"
    collection = rf"{PREFIX}/collections/{SEGMENT}"
    image = rf"{collection}/containers/{SEGMENT}/images/{SEGMENT}"
    return [
        (rf"{PREFIX}/teams", TeamsHandler),
        (team, TeamHandler),
        (rf"{team}/members", TeamMembersHandler),
        (rf"{team}/members/{SEGMENT}", TeamMemberHandler),
        (rf"{team}/join", TeamJoinHandler),
        (rf"{team}/leave", TeamLeaveHandler),
        (rf"{team}/invitations", TeamInvitationsHandler),
        (rf"{team}/invitations/{SEGMENT}", TeamInvitationHandler),
        (rf"{PREFIX}/invitations/{SEGMENT}", InvitationHandler),
        (rf"{collection}/members", CollectionMembersHandler),
        (rf"{collection}/members/{SEGMENT}", CollectionMemberHandler),
        (rf"{collection}/star", StarHandler),
        (rf"{PREFIX}/user/stars", StarsHandler),
        (rf"{image}/shares", SharesHandler),
        (rf"{image}/shares/{SEGMENT}", ShareHandler),
        (r"/shares/([^/]+)", ShareDownloadHandler),
    ]
