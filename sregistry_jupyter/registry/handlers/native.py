"""The route table of the native API: every path, its handler, and for each method what it reads and answers.

The router (``routes``) and the OpenAPI document (``registry/openapi.py``) both read this table, so a route
cannot be served without being documented, and the document names the models the handlers validate bodies
with and render answers from. Binary transfers (uploads, downloads) describe their bodies in
``registry/openapi.py``, which knows the headers they carry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel

from ... import models
from ...models import rules, values
from ..access import Action
from ..services import audit
from . import api, api_staff, api_teams, docs, transfer, uploads

PREFIX = api.PREFIX
PLACEHOLDER_RE = re.compile(r"\{(\w+)\}")
TUS = "resumable uploads speak tus 1.0 (https://tus.io/protocols/resumable-upload), as docs/uploads.md describes"
WRITES = (400, 401, 403, 404, 413)
READS = (400, 401, 404)


@dataclass(frozen=True)
class PathParam:
    """A part of a path: what it holds (a type of ``models.values``), and what the router lets through."""

    kind: Any
    description: str
    regex: str = "[^/]+"


PATH_PARAMS: dict[str, PathParam] = {
    "collection": PathParam(values.Name, "The collection's name."),
    "container": PathParam(values.Name, "The container's name within the collection."),
    "ref": PathParam(values.TagName, "A tag, or a digest `sha256.<hex>`."),
    "tag": PathParam(values.TagName, "The tag's name."),
    "token_id": PathParam(values.RowId, "The token's `id`.", r"\d+"),
    "team": PathParam(values.TeamName, "The team's name."),
    "user": PathParam(values.Username, "The member's user name."),
    "invitation_id": PathParam(values.RowId, "The invitation's `id`."),
    "code": PathParam(Annotated[str, values.documented("", rules.INVITATION_PATTERN)], "The invitation code."),
    "share_id": PathParam(values.RowId, "The link's `id`."),
    "token": PathParam(Annotated[str, values.documented("", rules.SHARE_PATTERN)], "The link's token."),
    "upload_id": PathParam(str, "The upload's id, from the `Location` its creation answered.", "[0-9a-f]{32}"),
}


@dataclass(frozen=True)
class Query:
    """A query parameter, as ``ApiHandler`` and the transfer handlers read it."""

    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False
    repeated: bool = False


ARCH = Query(
    "arch",
    {"type": "string", "pattern": f"^(?:{rules.ARCH_PATTERN})?$"},
    "Only the image for this architecture; empty or absent prefers `amd64` among tags of several architectures.",
)
PAGING = (
    Query(
        "page",
        {"type": "integer", "minimum": 1, "default": 1},
        f"Page number, from 1. Values above {rules.MAX_PAGE:,} are clamped to it; below 1 is a 400.",
    ),
    Query(
        "per_page",
        {"type": "integer", "minimum": 1},
        "Items per page. Defaults to the registry's page size (20 unless configured); values above its "
        "maximum (100 unless configured) are clamped to it; below 1 is a 400.",
    ),
)


@dataclass(frozen=True)
class Operation:
    """One method on a path: its answer (``status`` with ``answer``, a model or None for no body), the body it
    validates, the error statuses it may give, the weakest token scope that may do it (``scope``: an action of
    ``access.py`` or a scope's name), and whether it needs someone signed in."""

    method: str
    operation_id: str
    summary: str
    group: str
    answer: type[BaseModel] | None = None
    status: int = 200
    body: type[models.Body] | None = None
    body_required: bool = True
    errors: tuple[int, ...] = READS
    scope: Action | str | None = None
    signed_in: bool = False
    queries: tuple[Query, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    description: str | None = None
    transfer: str | None = None


@dataclass(frozen=True)
class Route:
    """A path and its handler. ``undocumented`` (a reason) keeps a route that speaks another protocol than
    JSON, whose own specification describes it, out of the document; every other route is in it."""

    path: str
    handler: type
    operations: tuple[Operation, ...] = field(default_factory=tuple)
    undocumented: str | None = None

    @property
    def pattern(self) -> str:
        """The router's regular expression: each ``{name}`` a group of what ``PATH_PARAMS`` lets through."""
        return PLACEHOLDER_RE.sub(lambda m: f"({PATH_PARAMS[m.group(1)].regex})", self.path)

    @property
    def params(self) -> list[str]:
        return PLACEHOLDER_RE.findall(self.path)


def op(method: str, operation_id: str, summary: str, group: str, **details: Any) -> Operation:
    return Operation(method, operation_id, summary, group, **details)


LOCATION = (("Location", "The new thing's URL path."),)
COLLECTION = f"{PREFIX}/collections/{{collection}}"
CONTAINER = f"{COLLECTION}/containers/{{container}}"
IMAGE = f"{CONTAINER}/images/{{ref}}"
TEAM = f"{PREFIX}/teams/{{team}}"
KEEPS_TEAM_OWNER = "Refused (409) if it would leave the team without an owner."
KEEPS_OWNER = "Refused (409) if it would leave the collection without an owner."
ROLE_RULE = (
    "Owners may give a role only to people who share one of their teams (403 otherwise); admins may give "
    "it to anyone. Owners push and manage; contributors pull, private collections included."
)
SHARE_OWNERS = "Owners of the collection only (403 for others who can see it)."
TEAM_OWNERS = "Team owners and staff only."

USER_ROUTES = (
    Route(
        f"{PREFIX}/user",
        api.UserHandler,
        (op("get", "getUser", "The signed-in user", "user", answer=models.User, errors=(401,), signed_in=True),),
    ),
    Route(
        f"{PREFIX}/user/tokens",
        api.TokensHandler,
        (
            op(
                "get",
                "listTokens",
                "The user's tokens: every one, revoked and expired ones too",
                "user",
                answer=models.TokenList,
                errors=(401,),
                signed_in=True,
            ),
            op(
                "post",
                "createToken",
                "Create a token",
                "user",
                answer=models.NewToken,
                status=201,
                body=models.CreateToken,
                body_required=False,
                errors=(400, 401, 403, 413),
                scope="admin",
                signed_in=True,
                description="A token's scope caps what it may do: `read` pulls, `write` also pushes, tags and "
                "deletes images, `admin` may do everything its user may. The token string is shown only here.",
            ),
        ),
    ),
    Route(
        f"{PREFIX}/user/tokens/{{token_id}}",
        api.TokenHandler,
        (
            op(
                "delete",
                "revokeToken",
                "Revoke a token (revoking twice is harmless)",
                "user",
                status=204,
                errors=WRITES,
                signed_in=True,
                description="Any token may revoke itself; revoking another token needs an admin-scoped token. "
                "Admins may revoke anyone's tokens.",
            ),
        ),
    ),
    Route(
        f"{PREFIX}/user/stars",
        api_teams.StarsHandler,
        (
            op(
                "get",
                "listStars",
                "The collections the caller starred, most recently starred first",
                "stars",
                answer=models.CollectionList,
                errors=(401,),
                signed_in=True,
                description="Only those the caller may still see.",
            ),
        ),
    ),
)

COLLECTION_ROUTES = (
    Route(
        f"{PREFIX}/collections",
        api.CollectionsHandler,
        (
            op(
                "get",
                "listCollections",
                "List and search collections",
                "collections",
                answer=models.CollectionPage,
                errors=(400, 401),
                queries=(
                    Query(
                        "q",
                        {"type": "string"},
                        "Case-insensitive substring of a collection's name, its description or one of its "
                        "containers' names.",
                    ),
                    Query(
                        "sort",
                        {"type": "string", "enum": list(rules.SORTS), "default": "name"},
                        "Order; a leading `-` reverses it.",
                    ),
                    *PAGING,
                ),
            ),
            op(
                "post",
                "createCollection",
                "Create a collection; the caller owns it",
                "collections",
                answer=models.Collection,
                status=201,
                body=models.CreateCollection,
                errors=(400, 401, 403, 409, 413),
                scope=Action.CREATE_COLLECTION,
                signed_in=True,
                headers=LOCATION,
            ),
        ),
    ),
    Route(
        COLLECTION,
        api.CollectionHandler,
        (
            op(
                "get",
                "getCollection",
                "A collection and its containers",
                "collections",
                answer=models.CollectionDetail,
            ),
            op(
                "patch",
                "updateCollection",
                "Change a collection's description or privacy",
                "collections",
                answer=models.Collection,
                body=models.UpdateCollection,
                body_required=False,
                errors=WRITES,
                scope=Action.UPDATE,
                signed_in=True,
                description="Changing privacy needs an admin-scoped token.",
            ),
            op(
                "delete",
                "deleteCollection",
                "Delete a collection with everything in it",
                "collections",
                status=204,
                errors=(*WRITES, 409),
                scope=Action.DELETE_COLLECTION,
                signed_in=True,
                description="Refused (409) while any tag in it is frozen.",
            ),
        ),
    ),
    Route(
        f"{COLLECTION}/containers",
        api.ContainersHandler,
        (op("get", "listContainers", "A collection's containers, by name", "containers", answer=models.ContainerList),),
    ),
    Route(
        f"{COLLECTION}/members",
        api_teams.CollectionMembersHandler,
        (
            op(
                "get",
                "listCollectionMembers",
                "Who has a role in a collection: owners first, then by name",
                "members",
                answer=models.CollectionMemberList,
            ),
            op(
                "post",
                "addCollectionMember",
                "Give someone a role in a collection",
                "members",
                answer=models.CollectionMember,
                status=201,
                body=models.AddCollectionMember,
                errors=(*WRITES, 409),
                scope=Action.MANAGE_MEMBERS,
                signed_in=True,
                description=f"{ROLE_RULE} 409 if the user already has a role: change it instead.",
            ),
        ),
    ),
    Route(
        f"{COLLECTION}/members/{{user}}",
        api_teams.CollectionMemberHandler,
        (
            op(
                "patch",
                "setCollectionRole",
                "Change someone's role in a collection",
                "members",
                answer=models.CollectionMember,
                body=models.SetCollectionRole,
                errors=(*WRITES, 409),
                scope=Action.MANAGE_MEMBERS,
                signed_in=True,
                description=f"{ROLE_RULE} {KEEPS_OWNER}",
            ),
            op(
                "delete",
                "removeCollectionMember",
                "Take someone's role in a collection away",
                "members",
                status=204,
                errors=(*WRITES, 409),
                scope=Action.MANAGE_MEMBERS,
                signed_in=True,
                description=KEEPS_OWNER,
            ),
        ),
    ),
    Route(
        f"{COLLECTION}/star",
        api_teams.StarHandler,
        (
            op(
                "put",
                "starCollection",
                "Star a collection (starring twice changes nothing)",
                "stars",
                answer=models.Collection,
                errors=WRITES,
                scope=Action.STAR,
                signed_in=True,
            ),
            op(
                "delete",
                "unstarCollection",
                "Remove one's star from a collection",
                "stars",
                answer=models.Collection,
                errors=WRITES,
                scope=Action.STAR,
                signed_in=True,
                description="Unstarring a collection one has not starred changes nothing.",
            ),
        ),
    ),
)

IMAGE_ROUTES = (
    Route(
        CONTAINER,
        api.ContainerHandler,
        (
            op(
                "get",
                "getContainer",
                "A container with its tags and images",
                "containers",
                answer=models.ContainerDetail,
            ),
            op(
                "delete",
                "deleteContainer",
                "Delete a container with its images and tags",
                "containers",
                status=204,
                errors=(*WRITES, 409),
                scope=Action.DELETE_IMAGE,
                signed_in=True,
                description="Refused (409) while any of its tags is frozen.",
            ),
        ),
    ),
    Route(
        f"{CONTAINER}/images",
        transfer.ImagesHandler,
        (
            op("get", "listImages", "A container's images, newest first", "images", answer=models.ImageList),
            op(
                "post",
                "uploadImage",
                "Upload an image",
                "images",
                answer=models.Image,
                status=201,
                errors=(400, 401, 403, 409, 411, 413),
                scope=Action.PUSH,
                signed_in=True,
                headers=(("Location", "The new image's URL path."),),
                transfer="upload",
                queries=(
                    Query(
                        "digest",
                        {"type": "string", "pattern": rules.anchored(rules.DIGEST_PATTERN)},
                        "The SHA-256 of the body; the upload is refused (400) if the bytes differ.",
                        required=True,
                    ),
                    Query(
                        "tag",
                        {"type": "array", "items": {"type": "string", "pattern": rules.anchored(rules.TAG_PATTERN)}},
                        "Tags to point at the image; repeat for several.",
                        repeated=True,
                    ),
                    Query(
                        "arch",
                        {"type": "string", "pattern": rules.anchored(rules.ARCH_PATTERN)},
                        "The image's architecture; default: what the SIF says, else `amd64`.",
                    ),
                    Query(
                        "size",
                        {"type": "integer", "minimum": 0},
                        "The body's size when no Content-Length is sent; must agree with Content-Length if both are.",
                    ),
                    Query("description", {"type": "string"}, "A description of the image."),
                ),
                description="Creates the collection and container if they do not exist (the caller must be "
                "allowed to create collections). The push is authorised before the first byte is read.",
            ),
        ),
    ),
    Route(
        IMAGE,
        api.ImageHandler,
        (
            op("get", "getImage", "An image's metadata", "images", answer=models.Image, queries=(ARCH,)),
            op(
                "delete",
                "deleteImage",
                "Delete an image and all its tags; its blob goes when no image uses it any more",
                "images",
                status=204,
                errors=(*WRITES, 409),
                scope=Action.DELETE_IMAGE,
                signed_in=True,
                queries=(ARCH,),
            ),
        ),
    ),
    Route(
        f"{IMAGE}/file",
        transfer.DownloadHandler,
        (
            op("get", "downloadImage", "Download an image's bytes", "images", transfer="download", queries=(ARCH,)),
            op(
                "head",
                "headImage",
                "An image's size and ETag, without the bytes",
                "images",
                transfer="download",
                queries=(ARCH,),
            ),
        ),
    ),
    Route(
        f"{CONTAINER}/tags",
        api.TagsHandler,
        (op("get", "listTags", "A container's tags, by name and architecture", "tags", answer=models.TagList),),
    ),
    Route(
        f"{CONTAINER}/tags/{{tag}}",
        api.TagHandler,
        (
            op(
                "put",
                "setTag",
                "Point a tag at an image, and freeze or unfreeze it",
                "tags",
                answer=models.Tag,
                body=models.SetTag,
                errors=(*WRITES, 409),
                scope=Action.TAG,
                signed_in=True,
                description="Freezing and thawing need an admin-scoped token and an owner.",
            ),
            op(
                "delete",
                "deleteTag",
                "Remove a tag (the image stays, by digest)",
                "tags",
                status=204,
                errors=(*WRITES, 409),
                scope=Action.TAG,
                signed_in=True,
                queries=(ARCH,),
            ),
        ),
    ),
    Route(
        f"{IMAGE}/shares",
        api_teams.SharesHandler,
        (
            op(
                "get",
                "listShares",
                "An image's share links: every one, expired ones too, newest first",
                "shares",
                answer=models.ShareList,
                errors=(400, 401, 403, 404),
                signed_in=True,
                queries=(ARCH,),
                description=SHARE_OWNERS,
            ),
            op(
                "post",
                "createShare",
                "Make a download link for an image; its token is shown only here",
                "shares",
                answer=models.NewShare,
                status=201,
                body=models.CreateShare,
                body_required=False,
                errors=WRITES,
                scope=Action.SHARE,
                signed_in=True,
                queries=(ARCH,),
                description=f"{SHARE_OWNERS} Anyone with the link may download this one image, without signing "
                "in, until it expires or is revoked.",
            ),
        ),
    ),
    Route(
        f"{IMAGE}/shares/{{share_id}}",
        api_teams.ShareHandler,
        (
            op(
                "delete",
                "revokeShare",
                "Revoke a share link: it no longer works",
                "shares",
                status=204,
                errors=WRITES,
                scope=Action.SHARE,
                signed_in=True,
                queries=(ARCH,),
                description=SHARE_OWNERS,
            ),
        ),
    ),
    Route(
        "/shares/{token}",
        api_teams.ShareDownloadHandler,
        (
            op("get", "downloadShare", "Download the image a share link names", "shares", transfer="share"),
            op("head", "headShare", "The size and ETag of a shared image", "shares", transfer="share"),
        ),
    ),
)

TEAM_ROUTES = (
    Route(
        f"{PREFIX}/teams",
        api_teams.TeamsHandler,
        (
            op(
                "get",
                "listTeams",
                "Every team, with its members, by name",
                "teams",
                answer=models.TeamList,
                errors=(401,),
                signed_in=True,
                description="Teams are shown to signed-in users, so that owners can find one another.",
            ),
            op(
                "post",
                "createTeam",
                "Create a team; the caller owns it",
                "teams",
                answer=models.Team,
                status=201,
                body=models.CreateTeam,
                errors=(400, 401, 403, 409, 413),
                scope=Action.CREATE_TEAM,
                signed_in=True,
                headers=LOCATION,
                description="Staff may create teams; users too where the registry allows it.",
            ),
        ),
    ),
    Route(
        TEAM,
        api_teams.TeamHandler,
        (
            op("get", "getTeam", "A team and its members", "teams", answer=models.Team, signed_in=True),
            op(
                "patch",
                "updateTeam",
                "Change a team's description or openness",
                "teams",
                answer=models.Team,
                body=models.UpdateTeam,
                body_required=False,
                errors=WRITES,
                scope=Action.MANAGE_MEMBERS,
                signed_in=True,
                description=TEAM_OWNERS,
            ),
            op(
                "delete",
                "deleteTeam",
                "Delete a team and its invitations; roles its members hold in collections stay",
                "teams",
                status=204,
                errors=WRITES,
                scope=Action.MANAGE_MEMBERS,
                signed_in=True,
                description=TEAM_OWNERS,
            ),
        ),
    ),
    Route(
        f"{TEAM}/members",
        api_teams.TeamMembersHandler,
        (
            op(
                "get",
                "listTeamMembers",
                "A team's members: owners first, then by name",
                "teams",
                answer=models.TeamMemberList,
                signed_in=True,
            ),
            op(
                "post",
                "addTeamMember",
                "Add someone to a team",
                "teams",
                answer=models.TeamMember,
                status=201,
                body=models.AddTeamMember,
                errors=(*WRITES, 409),
                scope=Action.MANAGE_MEMBERS,
                signed_in=True,
                description=f"{TEAM_OWNERS} 409 if the user is already a member.",
            ),
        ),
    ),
    Route(
        f"{TEAM}/members/{{user}}",
        api_teams.TeamMemberHandler,
        (
            op(
                "patch",
                "setTeamRole",
                "Promote a member to owner, or make an owner a member",
                "teams",
                answer=models.TeamMember,
                body=models.SetTeamRole,
                errors=(*WRITES, 409),
                scope=Action.MANAGE_MEMBERS,
                signed_in=True,
                description=f"{TEAM_OWNERS} {KEEPS_TEAM_OWNER}",
            ),
            op(
                "delete",
                "removeTeamMember",
                "Remove someone from a team",
                "teams",
                status=204,
                errors=(*WRITES, 409),
                scope=Action.MANAGE_MEMBERS,
                signed_in=True,
                description=f"Team owners and staff remove anyone; members may remove themselves. {KEEPS_TEAM_OWNER}",
            ),
        ),
    ),
    Route(
        f"{TEAM}/join",
        api_teams.TeamJoinHandler,
        (
            op(
                "post",
                "joinTeam",
                "Join an open team",
                "teams",
                answer=models.Team,
                errors=(*WRITES, 409),
                scope=Action.MANAGE_MEMBERS,
                signed_in=True,
                description="Invite-only teams answer 403: ask an owner for an invitation. Joining a team one is "
                "already in changes nothing.",
            ),
        ),
    ),
    Route(
        f"{TEAM}/leave",
        api_teams.TeamLeaveHandler,
        (
            op(
                "post",
                "leaveTeam",
                "Leave a team",
                "teams",
                status=204,
                errors=(*WRITES, 409),
                scope=Action.MANAGE_MEMBERS,
                signed_in=True,
                description=KEEPS_TEAM_OWNER,
            ),
        ),
    ),
    Route(
        f"{TEAM}/invitations",
        api_teams.TeamInvitationsHandler,
        (
            op(
                "get",
                "listInvitations",
                "A team's pending invitations: unused and unexpired, newest first",
                "teams",
                answer=models.InvitationList,
                errors=(400, 401, 403, 404),
                signed_in=True,
                description=TEAM_OWNERS,
            ),
            op(
                "post",
                "createInvitation",
                "Invite someone into a team",
                "teams",
                answer=models.NewInvitation,
                status=201,
                errors=WRITES,
                scope=Action.MANAGE_MEMBERS,
                signed_in=True,
                description=f"{TEAM_OWNERS} The link works once and expires after the registry's "
                "`invitation_days` (7 unless configured).",
            ),
        ),
    ),
    Route(
        f"{TEAM}/invitations/{{invitation_id}}",
        api_teams.TeamInvitationHandler,
        (
            op(
                "delete",
                "revokeInvitation",
                "Revoke a pending invitation: its link no longer works",
                "teams",
                status=204,
                errors=(*WRITES, 409),
                scope=Action.MANAGE_MEMBERS,
                signed_in=True,
                description=f"{TEAM_OWNERS} 409 if it was already used.",
            ),
        ),
    ),
    Route(
        f"{PREFIX}/invitations/{{code}}",
        api_teams.InvitationHandler,
        (
            op(
                "get",
                "previewInvitation",
                "Which team an invitation leads to",
                "teams",
                answer=models.InvitationPreview,
                description="Needs no sign-in. 400 with the reason for a used or expired invitation, or one whose "
                "team was deleted; 404 for an unknown or revoked one.",
            ),
            op(
                "post",
                "acceptInvitation",
                "Accept an invitation and join its team",
                "teams",
                answer=models.Team,
                errors=(*WRITES, 409),
                scope=Action.MANAGE_MEMBERS,
                signed_in=True,
                description="The invitation is used up (unless the caller was already a member): a second use "
                "answers 400.",
            ),
        ),
    ),
)

STAFF = f"{PREFIX}/staff"
STAFF_ONLY = (
    "The registry's staff and administrators only, with an admin-scoped token or a signed-in session "
    "(403 for others; JupyterHub tokens never qualify)."
)
STAFF_READS = (400, 401, 403)

STAFF_ROUTES = (
    Route(
        f"{STAFF}/users",
        api_staff.AccountsHandler,
        (
            op(
                "get",
                "listAccounts",
                "Every account, by name, with its standing and how many tokens it holds",
                "staff",
                answer=models.AccountPage,
                errors=STAFF_READS,
                scope="admin",
                signed_in=True,
                queries=(
                    Query(
                        "q",
                        {"type": "string", "maxLength": 64},
                        "Only accounts whose name contains this.",
                    ),
                    *PAGING,
                ),
                description=STAFF_ONLY,
            ),
        ),
    ),
    Route(
        f"{STAFF}/users/{{user}}",
        api_staff.AccountHandler,
        (
            op(
                "get",
                "getAccount",
                "An account, with its standing and how many tokens it holds",
                "staff",
                answer=models.Account,
                errors=(400, 401, 403, 404),
                scope="admin",
                signed_in=True,
                description=STAFF_ONLY,
            ),
            op(
                "patch",
                "updateAccount",
                "Disable or enable an account, or make it staff or an ordinary one",
                "staff",
                answer=models.Account,
                body=models.UpdateAccount,
                body_required=False,
                errors=WRITES,
                scope="admin",
                signed_in=True,
                description=f"{STAFF_ONLY} Only administrators make or unmake staff, or change an administrator's "
                "account; nobody changes their own. A disabled account's sessions and tokens stop working at once.",
            ),
        ),
    ),
    Route(
        f"{STAFF}/robots",
        api_staff.RobotsHandler,
        (
            op(
                "post",
                "createRobot",
                "Create a robot account: it never signs in and works with tokens the staff make",
                "staff",
                answer=models.Account,
                status=201,
                body=models.CreateRobot,
                errors=(400, 401, 403, 409, 413),
                scope="admin",
                signed_in=True,
                headers=LOCATION,
                description=STAFF_ONLY,
            ),
        ),
    ),
    Route(
        f"{STAFF}/robots/{{user}}/tokens",
        api_staff.RobotTokensHandler,
        (
            op(
                "post",
                "createRobotToken",
                "Create a token for a robot account",
                "staff",
                answer=models.RobotToken,
                status=201,
                body=models.CreateRobotToken,
                body_required=False,
                errors=WRITES,
                scope="admin",
                signed_in=True,
                description=f"{STAFF_ONLY} The token string is shown only here; 400 if the account is no robot.",
            ),
        ),
    ),
    Route(
        f"{STAFF}/audit",
        api_staff.AuditHandler,
        (
            op(
                "get",
                "listEvents",
                "The audit trail, newest first",
                "staff",
                answer=models.AuditPage,
                errors=STAFF_READS,
                scope="admin",
                signed_in=True,
                queries=(
                    Query("user", {"type": "string", "maxLength": audit.MAX_FILTER}, "Only this user's events."),
                    Query(
                        "collection",
                        {"type": "string", "maxLength": audit.MAX_FILTER},
                        "Only events in this collection.",
                    ),
                    Query(
                        "kind",
                        {"type": "string", "enum": ["", *audit.KINDS]},
                        "Only events of this kind; empty or absent: every kind.",
                    ),
                    *PAGING,
                ),
                description=STAFF_ONLY,
            ),
        ),
    ),
)

OTHER_ROUTES = (
    Route(
        f"{PREFIX}/stats",
        api.StatsHandler,
        (
            op(
                "get",
                "getStats",
                "Registry statistics for plots, over what the caller may see",
                "stats",
                answer=models.Stats,
                errors=(400, 401),
                queries=(
                    Query(
                        "days",
                        {"type": "integer", "minimum": 1, "default": 30},
                        f"Days of activity, ending today. Values above {rules.MAX_STATS_DAYS} are clamped to it; "
                        "below 1 is a 400.",
                    ),
                ),
            ),
        ),
    ),
    Route("/api/v1/uploads", uploads.UploadsHandler, undocumented=TUS),
    Route("/api/v1/uploads/{upload_id}", uploads.UploadHandler, undocumented=TUS),
    Route(
        "/api/openapi.json",
        docs.OpenApiHandler,
        (op("get", "getOpenApi", "This document", "documentation", errors=(), transfer="document"),),
    ),
)

ROUTES: tuple[Route, ...] = (
    *USER_ROUTES,
    *COLLECTION_ROUTES,
    *IMAGE_ROUTES,
    *TEAM_ROUTES,
    *STAFF_ROUTES,
    *OTHER_ROUTES,
)


def routes() -> list[tuple[str, type]]:
    """The native API's routes for Tornado; whatever else is under ``/api/v1`` answers the API's own 404."""
    return [(route.pattern, route.handler) for route in ROUTES] + [(rf"{PREFIX}/.*", api.ApiNotFoundHandler)]
