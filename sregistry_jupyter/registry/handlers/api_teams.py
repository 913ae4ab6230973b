"""The native API for people working together: teams and their invitations, roles in collections, stars
and share links (``/api/v1``), and the share links themselves (``/shares/<token>``, no sign-in needed).

Every decision is the services' (and so ``access.py``'s); these handlers only read requests and shape
answers. The routes are registered before ``api.routes()``, whose catch-all would otherwise answer them.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import InvalidInput
from ..orm import Image, Share, Team, utcnow
from ..services import collections, members, shares, stars, teams
from .api import PREFIX, SEGMENT, ApiHandler
from .serialize import collection_json, invitation_json, member_json, share_json, team_json
from .transfer import DownloadHandler

ROW_ID_RE = re.compile(r"[0-9]{1,18}")


class TeamApiHandler(ApiHandler):
    def row_id(self, raw: str, what: str) -> int:
        if not ROW_ID_RE.fullmatch(raw):
            raise InvalidInput(f"{what} {raw!r} is not a number")
        return int(raw)

    def team_body(self, team: Team) -> dict[str, Any]:
        found = teams.memberships(self.db, team)
        me = self.principal.user
        return team_json(team, found, next((m.role for m in found if me and m.user.id == me.id), None))


class TeamsHandler(TeamApiHandler):
    def get(self) -> None:
        self.write_json({"items": [self.team_body(t) for t in teams.list_teams(self.db, self.principal)]})

    def post(self) -> None:
        body = self.json_body()
        name = self.field(body, "name", str)
        if name is None:
            raise InvalidInput("'name' is required")
        team = teams.create_team(
            self.db,
            self.principal,
            name,
            description=self.field(body, "description", str, ""),
            open_=self.field(body, "open", bool, False),
        )
        self.db.commit()
        self.set_header("Location", f"{PREFIX}/teams/{team.name}")
        self.write_json(self.team_body(team), 201)


class TeamHandler(TeamApiHandler):
    def get(self, name: str) -> None:
        self.write_json(self.team_body(teams.get_team(self.db, self.principal, name)))

    def patch(self, name: str) -> None:
        body = self.json_body()
        team = teams.update_team(
            self.db,
            self.principal,
            name,
            description=self.field(body, "description", str),
            open_=self.field(body, "open", bool),
        )
        self.db.commit()
        self.write_json(self.team_body(team))

    def delete(self, name: str) -> None:
        teams.delete_team(self.db, self.principal, name)
        self.db.commit()
        self.no_content()


class TeamMembersHandler(TeamApiHandler):
    def get(self, name: str) -> None:
        team = teams.get_team(self.db, self.principal, name)
        self.write_json({"items": [member_json(m) for m in teams.memberships(self.db, team)]})

    def post(self, name: str) -> None:
        body = self.json_body()
        user = self.field(body, "user", str)
        if user is None:
            raise InvalidInput("'user' is required")
        role = teams.team_role_value(self.field(body, "role", str, "member"))
        membership = teams.add_member(self.db, self.principal, name, user, role)
        self.db.commit()
        self.write_json(member_json(membership), 201)


class TeamMemberHandler(TeamApiHandler):
    def patch(self, name: str, user: str) -> None:
        body = self.json_body()
        role = teams.team_role_value(self.field(body, "role", str))
        membership = teams.set_member_role(self.db, self.principal, name, user, role)
        self.db.commit()
        self.write_json(member_json(membership))

    def delete(self, name: str, user: str) -> None:
        teams.remove_member(self.db, self.principal, name, user)
        self.db.commit()
        self.no_content()


class TeamJoinHandler(TeamApiHandler):
    def post(self, name: str) -> None:
        team = teams.join_team(self.db, self.principal, name)
        self.db.commit()
        self.write_json(self.team_body(team))


class TeamLeaveHandler(TeamApiHandler):
    def post(self, name: str) -> None:
        teams.leave_team(self.db, self.principal, name)
        self.db.commit()
        self.no_content()


class TeamInvitationsHandler(TeamApiHandler):
    def get(self, name: str) -> None:
        pending = teams.list_invitations(self.db, self.principal, name)
        self.write_json({"items": [invitation_json(i, name) for i in pending]})

    def post(self, name: str) -> None:
        row, code = teams.create_invitation(self.db, self.principal, name, self.registry.invitation_days)
        self.db.commit()
        path = teams.invitation_link(code)
        self.write_json({**invitation_json(row, name), "code": code, "path": path, "url": self.base_url() + path}, 201)


class TeamInvitationHandler(TeamApiHandler):
    def delete(self, name: str, invitation_id: str) -> None:
        teams.revoke_invitation(self.db, self.principal, name, self.row_id(invitation_id, "invitation"))
        self.db.commit()
        self.no_content()


class InvitationHandler(TeamApiHandler):
    """``GET`` tells whoever holds a code which team it leads to; ``POST`` accepts it."""

    def get(self, code: str) -> None:
        team = teams.invitation_preview(self.db, code)
        self.write_json({"team": team.name, "description": team.description})

    def post(self, code: str) -> None:
        team = teams.accept_invitation(self.db, self.principal, code)
        self.db.commit()
        self.write_json(self.team_body(team))


class CollectionMembersHandler(TeamApiHandler):
    def get(self, collection: str) -> None:
        found = members.list_members(self.db, self.principal, collection)
        self.write_json({"items": [member_json(m) for m in found]})

    def post(self, collection: str) -> None:
        body = self.json_body()
        user = self.field(body, "user", str)
        if user is None:
            raise InvalidInput("'user' is required")
        role = members.role_value(self.field(body, "role", str, "contributor"))
        member = members.add_member(self.db, self.principal, collection, user, role)
        self.db.commit()
        self.write_json(member_json(member), 201)


class CollectionMemberHandler(TeamApiHandler):
    def patch(self, collection: str, user: str) -> None:
        body = self.json_body()
        role = members.role_value(self.field(body, "role", str))
        member = members.set_role(self.db, self.principal, collection, user, role)
        self.db.commit()
        self.write_json(member_json(member))

    def delete(self, collection: str, user: str) -> None:
        members.remove_member(self.db, self.principal, collection, user)
        self.db.commit()
        self.no_content()


class StarHandler(TeamApiHandler):
    def put(self, collection: str) -> None:
        found = stars.star(self.db, self.principal, collection)
        self.db.commit()
        self.write_json(collection_json(collections.summarise(self.db, found)))

    def delete(self, collection: str) -> None:
        found = stars.unstar(self.db, self.principal, collection)
        self.db.commit()
        self.write_json(collection_json(collections.summarise(self.db, found)))


class StarsHandler(TeamApiHandler):
    def get(self) -> None:
        found = stars.starred(self.db, self.principal)
        self.write_json({"items": [collection_json(collections.summarise(self.db, c)) for c in found]})


class SharesHandler(TeamApiHandler):
    def get(self, collection: str, container: str, ref: str) -> None:
        image, found = shares.list_shares(self.db, self.principal, collection, container, ref, self.arch_argument())
        now = utcnow()
        self.write_json({"items": [share_json(s, image, now) for s in found]})

    def post(self, collection: str, container: str, ref: str) -> None:
        body = self.json_body()
        days = shares.share_days(body.get("days"), self.registry.max_share_days)
        image, row, token = shares.create_share(
            self.db, self.principal, collection, container, ref, days=days, arch=self.arch_argument()
        )
        self.db.commit()
        path = shares.share_link(token)
        shown = share_json(row, image, utcnow())
        self.write_json({**shown, "token": token, "path": path, "url": self.base_url() + path}, 201)


class ShareHandler(TeamApiHandler):
    def delete(self, collection: str, container: str, ref: str, share_id: str) -> None:
        shares.revoke_share(
            self.db,
            self.principal,
            collection,
            container,
            ref,
            self.row_id(share_id, "share link"),
            self.arch_argument(),
        )
        self.db.commit()
        self.no_content()


class ShareDownloadHandler(DownloadHandler):
    """``GET``/``HEAD`` an image through a share link: no sign-in, ranges honoured, downloads counted."""

    def opened(self, token: str) -> tuple[Share, Image]:
        return shares.open_share(self.db, token)

    def head(self, token: str) -> None:  # type: ignore[override]
        self.send_head(self.opened(token)[1])

    async def get(self, token: str) -> None:  # type: ignore[override]
        share, image = self.opened(token)
        await self.send(
            image, lambda: shares.record_download(self.db, share, image, self.remote_addr, self.registry.limiter)
        )


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
