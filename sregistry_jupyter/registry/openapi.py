"""The OpenAPI 3 document of the native API, served at ``/api/openapi.json`` and shown by ``/api/docs``.

The document is built from small helpers so that each operation reads like the handler it describes, and
its patterns, enums and limits come from the modules that enforce them (``names``, ``tokens``, the
services), so a changed rule changes the document too. ``tests/registry/test_openapi.py`` holds the
document to the running server: every route is documented with exactly the methods its handler
implements, the responses of a realistic session validate against the documented statuses and schemas,
and a bounded fuzz run against the live registry finds no server error.
"""

from __future__ import annotations

import re
from typing import Any

from .. import __version__
from .access import Role, TeamRole
from .handlers.api import MAX_PAGE, PREFIX
from .names import ARCH_RE, DIGEST_RE, NAME_MAX, NAME_RE, TAG_RE, USERNAME_RE
from .services.collections import MAX_DESCRIPTION, SORTS, SUMMARY_SORTS
from .services.shares import DEFAULT_DAYS, SHARE_RE
from .services.stats import MAX_DAYS
from .services.teams import INVITATION_RE, TEAM_NAME_MAX
from .services.users import MAX_EXPIRY_DAYS, MAX_ROW_ID, MAX_TOKEN_NAME
from .tokens import SCOPES, TOKEN_RE

Schema = dict[str, Any]

COLLECTION = f"{PREFIX}/collections/{{collection}}"
CONTAINER = f"{COLLECTION}/containers/{{container}}"

DATE_TIME: Schema = {"type": "string", "format": "date-time", "example": "2024-05-01T12:00:00Z"}
COUNT: Schema = {"type": "integer", "minimum": 0}
BYTES: Schema = {"type": "integer", "format": "int64", "minimum": 0, "description": "Size in bytes."}
JSON_NULL: Schema = {"type": "object", "nullable": True, "enum": [None]}

OPTIONAL_AUTH: list[dict[str, list]] = [{}, {"bearerAuth": []}]
REQUIRED_AUTH: list[dict[str, list]] = [{"bearerAuth": []}]

ERRORS = {
    400: ("BadRequest", "Invalid input: a name, tag, digest, parameter, header or body the registry refuses."),
    401: ("Unauthorized", "The token is invalid, expired or revoked, or this needs a signed-in user."),
    403: ("Forbidden", "The caller is known but may not do this (role or token scope)."),
    404: ("NotFound", "No such thing, or it is private and the caller may not see it."),
    409: ("Conflict", "The change collides with existing state (a name in use, a frozen tag)."),
    411: ("LengthRequired", "The upload declares no size: send Content-Length or `?size=`."),
    413: ("TooLarge", "The body is larger than the registry accepts."),
    416: ("RangeNotSatisfiable", "The Range cannot be served; `Content-Range: bytes */<size>` gives the size."),
    429: ("TooManyRequests", "Over a request or weekly pull limit; `Retry-After` says when to try again."),
}
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head")


def anchored(pattern: re.Pattern[str]) -> str:
    """A JSON Schema ``pattern`` matching the whole value, as the registry's ``fullmatch`` does."""
    return f"^(?:{pattern.pattern})$"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable_ref(name: str) -> Schema:
    """A reference that also admits ``null`` (OpenAPI 3.0 ignores ``nullable`` beside ``$ref``)."""
    return {"anyOf": [ref(name), JSON_NULL]}


def nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def obj(properties: dict[str, Schema], *, description: str | None = None) -> Schema:
    """A closed object with all its properties present, so that a renamed or added field fails validation."""
    schema: Schema = {
        "type": "object",
        "required": list(properties),
        "properties": properties,
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def items_of(name: str) -> Schema:
    return obj({"items": {"type": "array", "items": ref(name)}})


def string(pattern: re.Pattern[str] | None = None, description: str | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "string", **extra}
    if pattern is not None:
        schema["pattern"] = anchored(pattern)
    if description:
        schema["description"] = description
    return schema


NAME = string(NAME_RE, "Lower-case letters and digits, separated by single '.', '_' or '-'.", maxLength=NAME_MAX)
DIGEST = string(
    DIGEST_RE, "`sha256.` and the 64 lower-case hex digits of the file's SHA-256.", example="sha256." + "0" * 64
)
TAG = string(TAG_RE, "1-128 letters, digits, '_', '.' and '-', not starting with '.', '-' or `sha256.`.")
ARCH = string(ARCH_RE, "An architecture name as Go spells it (`amd64`, `arm64`, ...).")
USERNAME = string(USERNAME_RE, "A user name: lower-case letters, digits, '.', '_' and '-'.", maxLength=64)
TEAM_NAME = {**NAME, "maxLength": TEAM_NAME_MAX}
ROW_ID: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID}


def schemas() -> dict[str, Schema]:
    """The reusable shapes of ``handlers/serialize.py`` and of the statistics service."""
    tag = {
        "name": TAG,
        "arch": ARCH,
        "digest": DIGEST,
        "frozen": {"type": "boolean", "description": "A frozen tag cannot be moved, removed or deleted."},
        "updated": nullable(DATE_TIME),
    }
    container = {
        "collection": NAME,
        "name": NAME,
        "description": {"type": "string"},
        "tags": {"type": "array", "items": ref("Tag")},
        "created": nullable(DATE_TIME),
        "updated": nullable(DATE_TIME),
    }
    collection = {
        "name": NAME,
        "description": {"type": "string"},
        "private": {"type": "boolean"},
        "owners": {"type": "array", "items": {"type": "string"}, "description": "User names of the owners."},
        "containers": COUNT,
        "images": COUNT,
        "size": BYTES,
        "stars": COUNT,
        "created": nullable(DATE_TIME),
        "updated": nullable(DATE_TIME),
    }
    token = {
        "id": {"type": "integer"},
        "name": {"type": "string", "maxLength": MAX_TOKEN_NAME},
        "scope": {"type": "string", "enum": list(SCOPES)},
        "created": nullable(DATE_TIME),
        "expires": nullable(DATE_TIME),
        "last_used": nullable(DATE_TIME),
        "revoked": nullable(DATE_TIME),
    }
    return {
        "Error": obj(
            {
                "code": {"type": "string", "description": "Stable and machine-readable.", "example": "NOT_FOUND"},
                "message": {"type": "string", "description": "For people."},
            },
            description="The error envelope of the native API.",
        ),
        "LibraryError": obj(
            {"error": obj({"code": {"type": "integer"}, "message": {"type": "string"}})},
            description="The error envelope of the library API, which the library probes answer in.",
        ),
        "User": obj(
            {
                "name": {"type": "string"},
                "admin": {"type": "boolean"},
                "staff": {"type": "boolean"},
                "robot": {"type": "boolean"},
                "created": nullable(DATE_TIME),
            }
        ),
        "Token": obj(token, description="An API token; the token string itself is shown only once, on creation."),
        "NewToken": obj(
            {**token, "token": string(TOKEN_RE, "The bearer token. It is never shown again.")},
            description="A token just created, with its token string.",
        ),
        "TokenList": items_of("Token"),
        "Collection": obj(collection),
        "CollectionDetail": obj(
            {**collection, "containers_list": {"type": "array", "items": ref("Container")}},
            description="A collection with its containers.",
        ),
        "CollectionPage": obj(
            {
                "items": {"type": "array", "items": ref("Collection")},
                "page": {"type": "integer", "minimum": 1},
                "per_page": {"type": "integer", "minimum": 1},
                "total": COUNT,
                "pages": COUNT,
            },
            description="One page of collections and where it lies among all of them.",
        ),
        "Container": obj(container),
        "ContainerDetail": obj(
            {**container, "images": {"type": "array", "items": ref("Image")}},
            description="A container with its images, newest first.",
        ),
        "ContainerList": items_of("Container"),
        "Tag": obj(tag),
        "TagList": items_of("Tag"),
        "Image": obj(
            {
                "collection": NAME,
                "container": NAME,
                "digest": DIGEST,
                "size": BYTES,
                "arch": ARCH,
                "description": {"type": "string"},
                "tags": {"type": "array", "items": TAG, "description": "Tags pointing at this image, sorted."},
                "signed": {"type": "boolean", "description": "The SIF carries at least one signature."},
                "downloads": COUNT,
                "uploaded": nullable(DATE_TIME),
                "sif": nullable_ref("SifMetadata"),
            },
            description="One uploaded image; `sif` is null when the file is not a SIF.",
        ),
        "ImageList": items_of("Image"),
        "SifPartition": obj(
            {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "fstype": {"type": "string", "example": "Squashfs"},
                "parttype": {"type": "string", "example": "Primary System"},
                "primary": {"type": "boolean"},
                "arch": {"type": "string"},
                "size": BYTES,
            }
        ),
        "SifMetadata": obj(
            {
                "partitions": {"type": "array", "items": ref("SifPartition")},
                "deffile": nullable({"type": "string", "description": "The definition file the image was built from."}),
                "labels": nullable({"type": "object", "additionalProperties": True}),
            },
            description="What the SIF file says about itself, read from its header and descriptors.",
        ),
        "Stats": stats_schema(),
        "Version": obj({"data": obj({"version": {"type": "string"}, "apiVersion": {"type": "string"}})}),
        "TokenStatus": obj(
            {"data": obj({"status": {"type": "string", "enum": ["valid"]}, "user": {"type": "string"}})}
        ),
        **sharing_schemas(),
    }


def role_enum(roles: type[Role] | type[TeamRole]) -> Schema:
    return {"type": "string", "enum": [r.value for r in roles]}


def link(what: str) -> dict[str, Schema]:
    return {
        "path": {"type": "string", "description": f"The {what}'s URL path on the registry."},
        "url": {"type": "string", "description": f"The {what}'s absolute URL. It is never shown again."},
    }


def sharing_schemas() -> dict[str, Schema]:
    """The shapes of teams, invitations, collection roles and share links."""
    invitation = {"id": ROW_ID, "team": TEAM_NAME, "created": nullable(DATE_TIME), "expires": nullable(DATE_TIME)}
    share = {
        "id": ROW_ID,
        "collection": NAME,
        "container": NAME,
        "digest": DIGEST,
        "created": nullable(DATE_TIME),
        "expires": nullable(DATE_TIME),
        "expired": {"type": "boolean", "description": "An expired link no longer works."},
        "downloads": {**COUNT, "description": "Downloads through this link from the first byte."},
    }
    return {
        "TeamMember": obj({"user": USERNAME, "role": role_enum(TeamRole)}),
        "TeamMemberList": items_of("TeamMember"),
        "Team": obj(
            {
                "name": TEAM_NAME,
                "description": {"type": "string"},
                "open": {"type": "boolean", "description": "Anyone may join an open team; others need an invitation."},
                "owners": {"type": "array", "items": USERNAME},
                "members": {"type": "array", "items": ref("TeamMember"), "description": "Owners first."},
                "your_role": {
                    **role_enum(TeamRole),
                    "enum": [*role_enum(TeamRole)["enum"], None],
                    "nullable": True,
                    "description": "The caller's role in the team; null if not a member.",
                },
                "created": nullable(DATE_TIME),
            },
            description="A team: the people a collection owner may give roles to.",
        ),
        "TeamList": items_of("Team"),
        "Invitation": obj(invitation, description="A pending invitation; its code is shown only on creation."),
        "InvitationList": items_of("Invitation"),
        "NewInvitation": obj(
            {
                **invitation,
                "code": string(INVITATION_RE, "The invitation code. It works once and is never shown again."),
                **link("invitation page"),
            },
            description="An invitation just created: send its `url` to the person invited.",
        ),
        "InvitationPreview": obj(
            {"team": TEAM_NAME, "description": {"type": "string"}},
            description="The team a usable invitation leads to.",
        ),
        "CollectionMember": obj({"user": USERNAME, "role": role_enum(Role)}),
        "CollectionMemberList": items_of("CollectionMember"),
        "CollectionList": items_of("Collection"),
        "Share": obj(share, description="A share link; its token is shown only on creation."),
        "ShareList": items_of("Share"),
        "NewShare": obj(
            {**share, "token": string(SHARE_RE, "The link's secret. It is never shown again."), **link("download")},
            description="A share link just created: anyone with its `url` may download the image until it expires.",
        ),
    }


def stats_schema() -> Schema:
    return obj(
        {
            "totals": obj({"collections": COUNT, "containers": COUNT, "images": COUNT, "tags": COUNT, "size": BYTES}),
            "collections": {
                "type": "array",
                "items": obj(
                    {"name": NAME, "private": {"type": "boolean"}, "containers": COUNT, "images": COUNT, "size": BYTES}
                ),
            },
            "containers": {
                "type": "array",
                "items": obj({"collection": NAME, "name": NAME, "images": COUNT, "size": BYTES, "downloads": COUNT}),
            },
            "activity": {
                "type": "array",
                "description": "One entry per day, oldest first, ending today (UTC).",
                "items": obj(
                    {"date": {"type": "string", "format": "date"}, "pushes": COUNT, "pulls": COUNT},
                ),
            },
        },
        description="Sizes and counts over the collections the caller may see, and daily pushes and pulls.",
    )


def param(name: str, where: str, schema: Schema, description: str, *, required: bool = False, **extra: Any) -> Schema:
    return {"name": name, "in": where, "required": required, "schema": schema, "description": description, **extra}


def query(name: str, schema: Schema, description: str, **extra: Any) -> Schema:
    return param(name, "query", schema, description, **extra)


def path(name: str, schema: Schema, description: str) -> Schema:
    return param(name, "path", schema, description, required=True)


COLLECTION_PARAM = path("collection", NAME, "The collection's name.")
CONTAINER_PARAMS = [COLLECTION_PARAM, path("container", NAME, "The container's name within the collection.")]
REF_PARAM = path("ref", {**TAG, "description": "A tag, or a digest `sha256.<hex>`."}, "A tag or a digest.")
TAG_PARAM = path("tag", TAG, "The tag's name.")
ARCH_QUERY = query(
    "arch",
    {"type": "string", "pattern": f"^(?:{ARCH_RE.pattern})?$"},
    "Only the image for this architecture; empty or absent prefers `amd64` among tags of several architectures.",
)
PAGING = [
    query(
        "page",
        {"type": "integer", "minimum": 1, "default": 1},
        f"Page number, from 1. Values above {MAX_PAGE:,} are clamped to it; below 1 is a 400.",
    ),
    query(
        "per_page",
        {"type": "integer", "minimum": 1},
        "Items per page. Defaults to the registry's page size (20 unless configured); values above its "
        "maximum (100 unless configured) are clamped to it; below 1 is a 400.",
    ),
]


def json_response(description: str, schema: Schema, headers: dict[str, Schema] | None = None) -> Schema:
    response: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def header(description: str, schema: Schema | None = None) -> Schema:
    return {"description": description, "schema": schema or {"type": "string"}}


def errors(*statuses: int) -> dict[str, Schema]:
    return {str(status): {"$ref": f"#/components/responses/{ERRORS[status][0]}"} for status in statuses}


def no_content(description: str) -> dict[str, Schema]:
    return {"204": {"description": description}}


def json_body(schema: Schema, *, required: bool = True) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def operation(
    operation_id: str,
    summary: str,
    tag: str,
    responses: dict[str, Schema],
    *,
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    auth: list[dict[str, list]] = OPTIONAL_AUTH,
    description: str | None = None,
) -> Schema:
    op: Schema = {"operationId": operation_id, "summary": summary, "tags": [tag], "security": auth}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    op["responses"] = responses
    return op


def user_paths() -> dict[str, Schema]:
    token_body = {
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_TOKEN_NAME,
                "pattern": r"\S",
                "default": "token",
            },
            "scope": {"type": "string", "enum": list(SCOPES), "default": "read"},
            "expires_in_days": nullable(
                {
                    "type": "number",
                    "exclusiveMinimum": True,
                    "minimum": 0,
                    "maximum": MAX_EXPIRY_DAYS,
                    "description": "Absent or null: the token never expires.",
                }
            ),
        },
    }
    return {
        f"{PREFIX}/user": {
            "get": operation(
                "getUser",
                "The signed-in user",
                "user",
                {"200": json_response("The user behind the token.", ref("User")), **errors(401)},
                auth=REQUIRED_AUTH,
            )
        },
        f"{PREFIX}/user/tokens": {
            "get": operation(
                "listTokens",
                "The user's tokens",
                "user",
                {
                    "200": json_response("Every token of the user, revoked and expired ones too.", ref("TokenList")),
                    **errors(401),
                },
                auth=REQUIRED_AUTH,
            ),
            "post": operation(
                "createToken",
                "Create a token",
                "user",
                {
                    "201": json_response("The new token; its string is shown only here.", ref("NewToken")),
                    **errors(400, 401, 403, 413),
                },
                body=json_body(token_body, required=False),
                auth=REQUIRED_AUTH,
                description="Needs an admin-scoped token. A token's scope caps what it may do: `read` pulls, "
                "`write` also pushes, tags and deletes images, `admin` may do everything its user may.",
            ),
        },
        f"{PREFIX}/user/tokens/{{token_id}}": {
            "delete": operation(
                "revokeToken",
                "Revoke a token",
                "user",
                {**no_content("Revoked (revoking twice is harmless)."), **errors(400, 401, 403, 404, 413)},
                parameters=[
                    path("token_id", ROW_ID, "The token's `id`.")
                ],
                auth=REQUIRED_AUTH,
                description="Any token may revoke itself; revoking another token needs an admin-scoped token. "
                "Admins may revoke anyone's tokens.",
            )
        },
    }


def collection_paths() -> dict[str, Schema]:
    description = {"type": "string", "maxLength": MAX_DESCRIPTION}
    create = {
        "type": "object",
        "required": ["name"],
        "properties": {"name": NAME, "description": description, "private": {"type": "boolean", "default": False}},
    }
    update = {
        "type": "object",
        "properties": {"description": nullable(description), "private": nullable({"type": "boolean"})},
        "description": "Absent or null fields are left as they are.",
    }
    location = {"Location": header("The new collection's URL path.")}
    return {
        f"{PREFIX}/collections": {
            "get": operation(
                "listCollections",
                "List and search collections",
                "collections",
                {
                    "200": json_response("One page of the collections the caller may see.", ref("CollectionPage")),
                    **errors(400, 401),
                },
                parameters=[
                    query(
                        "q",
                        {"type": "string"},
                        "Case-insensitive substring of a collection's name, its "
                        "description or one of its containers' names.",
                    ),
                    query(
                        "sort",
                        {"type": "string", "enum": [*SORTS, *SUMMARY_SORTS], "default": "name"},
                        "Order; a leading `-` reverses it.",
                    ),
                    *PAGING,
                ],
            ),
            "post": operation(
                "createCollection",
                "Create a collection",
                "collections",
                {
                    "201": json_response("Created; the caller owns it.", ref("Collection"), location),
                    **errors(400, 401, 403, 409, 413),
                },
                body=json_body(create),
                auth=REQUIRED_AUTH,
            ),
        },
        COLLECTION: {
            "parameters": [COLLECTION_PARAM],
            "get": operation(
                "getCollection",
                "A collection and its containers",
                "collections",
                {"200": json_response("The collection.", ref("CollectionDetail")), **errors(400, 401, 404)},
            ),
            "patch": operation(
                "updateCollection",
                "Change a collection's description or privacy",
                "collections",
                {"200": json_response("The changed collection.", ref("Collection")), **errors(400, 401, 403, 404, 413)},
                body=json_body(update, required=False),
                auth=REQUIRED_AUTH,
            ),
            "delete": operation(
                "deleteCollection",
                "Delete a collection with everything in it",
                "collections",
                {**no_content("Deleted."), **errors(400, 401, 403, 404, 409, 413)},
                auth=REQUIRED_AUTH,
                description="Refused (409) while any tag in it is frozen.",
            ),
        },
        f"{COLLECTION}/containers": {
            "parameters": [COLLECTION_PARAM],
            "get": operation(
                "listContainers",
                "A collection's containers",
                "containers",
                {"200": json_response("The containers, by name.", ref("ContainerList")), **errors(400, 401, 404)},
            ),
        },
    }


def container_paths() -> dict[str, Schema]:
    return {
        CONTAINER: {
            "parameters": CONTAINER_PARAMS,
            "get": operation(
                "getContainer",
                "A container with its tags and images",
                "containers",
                {"200": json_response("The container.", ref("ContainerDetail")), **errors(400, 401, 404)},
            ),
            "delete": operation(
                "deleteContainer",
                "Delete a container with its images and tags",
                "containers",
                {**no_content("Deleted."), **errors(400, 401, 403, 404, 409, 413)},
                auth=REQUIRED_AUTH,
                description="Refused (409) while any of its tags is frozen.",
            ),
        },
        f"{CONTAINER}/tags": {
            "parameters": CONTAINER_PARAMS,
            "get": operation(
                "listTags",
                "A container's tags",
                "tags",
                {"200": json_response("The tags, by name and architecture.", ref("TagList")), **errors(400, 401, 404)},
            ),
        },
        f"{CONTAINER}/tags/{{tag}}": {
            "parameters": [*CONTAINER_PARAMS, TAG_PARAM],
            "put": operation(
                "setTag",
                "Point a tag at an image, and freeze or unfreeze it",
                "tags",
                {"200": json_response("The tag as it now is.", ref("Tag")), **errors(400, 401, 403, 404, 409, 413)},
                body=json_body(
                    {
                        "type": "object",
                        "required": ["digest"],
                        "properties": {
                            "digest": DIGEST,
                            "arch": nullable({**ARCH, "description": "The image's architecture, if it must match."}),
                            "frozen": nullable({"type": "boolean", "description": "Freezing needs an owner."}),
                        },
                    }
                ),
                auth=REQUIRED_AUTH,
            ),
            "delete": operation(
                "deleteTag",
                "Remove a tag (the image stays, by digest)",
                "tags",
                {**no_content("Removed."), **errors(400, 401, 403, 404, 409, 413)},
                parameters=[ARCH_QUERY],
                auth=REQUIRED_AUTH,
            ),
        },
    }


def image_paths() -> dict[str, Schema]:
    upload_params = [
        query(
            "digest", DIGEST, "The SHA-256 of the body; the upload is refused (400) if the bytes differ.", required=True
        ),
        query(
            "tag",
            {"type": "array", "items": TAG},
            "Tags to point at the image; repeat for several.",
            style="form",
            explode=True,
        ),
        query("arch", ARCH, "The image's architecture; default: what the SIF says, else `amd64`."),
        query(
            "size",
            {"type": "integer", "minimum": 0},
            "The body's size when no Content-Length is sent; must agree with Content-Length if both are.",
        ),
        query("description", {"type": "string"}, "A description of the image."),
    ]
    upload_body = {
        "required": True,
        "description": "The raw bytes of the image, streamed; nothing is recorded unless they match `digest`.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
    return {
        f"{CONTAINER}/images": {
            "parameters": CONTAINER_PARAMS,
            "get": operation(
                "listImages",
                "A container's images",
                "images",
                {"200": json_response("The uploaded images, newest first.", ref("ImageList")), **errors(400, 401, 404)},
            ),
            "post": operation(
                "uploadImage",
                "Upload an image",
                "images",
                {
                    "201": json_response(
                        "Stored and recorded.", ref("Image"), {"Location": header("The new image's URL path.")}
                    ),
                    **errors(400, 401, 403, 409, 411, 413),
                },
                parameters=upload_params,
                body=upload_body,
                auth=REQUIRED_AUTH,
                description="Creates the collection and container if they do not exist (the caller must be "
                "allowed to create collections). The push is authorised before the first byte is read.",
            ),
        },
        f"{CONTAINER}/images/{{ref}}": {
            "parameters": [*CONTAINER_PARAMS, REF_PARAM],
            "get": operation(
                "getImage",
                "An image's metadata",
                "images",
                {"200": json_response("The image.", ref("Image")), **errors(400, 401, 404)},
                parameters=[ARCH_QUERY],
            ),
            "delete": operation(
                "deleteImage",
                "Delete an image and all its tags",
                "images",
                {
                    **no_content("Deleted; its blob goes when no image uses it any more."),
                    **errors(400, 401, 403, 404, 409, 413),
                },
                parameters=[ARCH_QUERY],
                auth=REQUIRED_AUTH,
            ),
        },
        f"{CONTAINER}/images/{{ref}}/file": {
            "parameters": [*CONTAINER_PARAMS, REF_PARAM],
            "get": download_operation("downloadImage", "Download an image's bytes"),
            "head": download_operation("headImage", "An image's size and ETag, without the bytes"),
        },
    }


def download_headers(*, partial: bool = False) -> dict[str, Schema]:
    headers = {
        "ETag": header('The quoted digest: `"sha256.<hex>"`.'),
        "Accept-Ranges": header("Always `bytes`."),
        "Content-Length": header("Bytes in this response.", {"type": "integer", "minimum": 0}),
        "Content-Disposition": header("`attachment` with a `.sif` file name."),
    }
    if partial:
        headers["Content-Range"] = header("`bytes <first>-<last>/<size>`.")
    return headers


def download_responses() -> dict[str, Schema]:
    binary = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    return {
        "200": {"description": "The whole file.", "headers": download_headers(), "content": binary},
        "206": {
            "description": "The requested range.",
            "headers": download_headers(partial=True),
            "content": binary,
        },
        "304": {
            "description": "`If-None-Match` names this image's ETag.",
            "headers": {"ETag": header("The ETag.")},
        },
        **errors(400, 401, 404, 416),
    }


RANGE_PARAMS = [
    param(
        "Range",
        "header",
        {"type": "string", "example": "bytes=0-1023"},
        "One `bytes` range (`first-last`, `first-` or `-suffix`). Several ranges, inverted or "
        "unsatisfiable ones are a 416; other units are ignored.",
    ),
    param("If-None-Match", "header", {"type": "string"}, "ETags; a match answers 304 without a body."),
    param("If-Range", "header", {"type": "string"}, "Honour `Range` only if this is the image's ETag."),
]


def download_operation(operation_id: str, summary: str) -> Schema:
    return operation(
        operation_id,
        summary,
        "images",
        download_responses(),
        parameters=[ARCH_QUERY, *RANGE_PARAMS],
        description="Downloading from the first byte counts as a pull. The ETag is the digest, so a cached "
        "copy is valid for ever.",
    )


def stats_paths() -> dict[str, Schema]:
    return {
        f"{PREFIX}/stats": {
            "get": operation(
                "getStats",
                "Registry statistics for plots",
                "stats",
                {"200": json_response("Figures over what the caller may see.", ref("Stats")), **errors(400, 401)},
                parameters=[
                    query(
                        "days",
                        {"type": "integer", "minimum": 1, "default": 30},
                        f"Days of activity, ending today. Values above {MAX_DAYS} are clamped to it; below 1 is a 400.",
                    )
                ],
            )
        }
    }


TEAM = f"{PREFIX}/teams/{{team}}"
TEAM_PARAM = path("team", TEAM_NAME, "The team's name.")
USER_PARAM = path("user", USERNAME, "The member's user name.")
WRITES = (400, 401, 403, 404, 413)


def team_paths() -> dict[str, Schema]:
    description = {"type": "string", "maxLength": MAX_DESCRIPTION}
    create = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": TEAM_NAME,
            "description": description,
            "open": {"type": "boolean", "default": False, "description": "Let anyone join."},
        },
    }
    update = {
        "type": "object",
        "properties": {"description": nullable(description), "open": nullable({"type": "boolean"})},
        "description": "Absent or null fields are left as they are.",
    }
    team = json_response("The team with its members.", ref("Team"))
    return {
        f"{PREFIX}/teams": {
            "get": operation(
                "listTeams",
                "Every team, with its members",
                "teams",
                {"200": json_response("The teams, by name.", ref("TeamList")), **errors(401)},
                auth=REQUIRED_AUTH,
                description="Teams are shown to signed-in users, so that owners can find one another.",
            ),
            "post": operation(
                "createTeam",
                "Create a team",
                "teams",
                {
                    "201": json_response(
                        "Created; the caller owns it.", ref("Team"), {"Location": header("The team's URL path.")}
                    ),
                    **errors(400, 401, 403, 409, 413),
                },
                body=json_body(create),
                auth=REQUIRED_AUTH,
                description="Staff may create teams; users too where the registry allows it. Needs an admin-scoped "
                "token or a signed-in session.",
            ),
        },
        TEAM: {
            "parameters": [TEAM_PARAM],
            "get": operation(
                "getTeam", "A team and its members", "teams", {"200": team, **errors(400, 401, 404)}, auth=REQUIRED_AUTH
            ),
            "patch": operation(
                "updateTeam",
                "Change a team's description or openness",
                "teams",
                {"200": team, **errors(*WRITES)},
                body=json_body(update, required=False),
                auth=REQUIRED_AUTH,
                description="Team owners and staff only.",
            ),
            "delete": operation(
                "deleteTeam",
                "Delete a team and its invitations",
                "teams",
                {**no_content("Deleted. Roles its members hold in collections stay."), **errors(*WRITES)},
                auth=REQUIRED_AUTH,
                description="Team owners and staff only.",
            ),
        },
        **team_member_paths(),
        **team_invitation_paths(),
    }


def team_member_paths() -> dict[str, Schema]:
    add = {
        "type": "object",
        "required": ["user"],
        "properties": {"user": USERNAME, "role": {**role_enum(TeamRole), "default": TeamRole.MEMBER.value}},
    }
    change = {"type": "object", "required": ["role"], "properties": {"role": role_enum(TeamRole)}}
    member = ref("TeamMember")
    keeps = "Refused (409) if it would leave the team without an owner."
    return {
        f"{TEAM}/members": {
            "parameters": [TEAM_PARAM],
            "get": operation(
                "listTeamMembers",
                "A team's members",
                "teams",
                {"200": json_response("Owners first, then by name.", ref("TeamMemberList")), **errors(400, 401, 404)},
                auth=REQUIRED_AUTH,
            ),
            "post": operation(
                "addTeamMember",
                "Add someone to a team",
                "teams",
                {"201": json_response("Added.", member), **errors(*WRITES, 409)},
                body=json_body(add),
                auth=REQUIRED_AUTH,
                description="Team owners and staff only; 409 if the user is already a member.",
            ),
        },
        f"{TEAM}/members/{{user}}": {
            "parameters": [TEAM_PARAM, USER_PARAM],
            "patch": operation(
                "setTeamRole",
                "Promote a member to owner, or make an owner a member",
                "teams",
                {"200": json_response("The member's new role.", member), **errors(*WRITES, 409)},
                body=json_body(change),
                auth=REQUIRED_AUTH,
                description=f"Team owners and staff only. {keeps}",
            ),
            "delete": operation(
                "removeTeamMember",
                "Remove someone from a team",
                "teams",
                {**no_content("Removed."), **errors(*WRITES, 409)},
                auth=REQUIRED_AUTH,
                description=f"Team owners and staff remove anyone; members may remove themselves. {keeps}",
            ),
        },
        f"{TEAM}/join": {
            "parameters": [TEAM_PARAM],
            "post": operation(
                "joinTeam",
                "Join an open team",
                "teams",
                {"200": json_response("The team, now with the caller.", ref("Team")), **errors(*WRITES, 409)},
                auth=REQUIRED_AUTH,
                description="Invite-only teams answer 403: ask an owner for an invitation. Joining a team one is "
                "already in changes nothing.",
            ),
        },
        f"{TEAM}/leave": {
            "parameters": [TEAM_PARAM],
            "post": operation(
                "leaveTeam",
                "Leave a team",
                "teams",
                {**no_content("Left."), **errors(*WRITES, 409)},
                auth=REQUIRED_AUTH,
                description=keeps,
            ),
        },
    }


def team_invitation_paths() -> dict[str, Schema]:
    code = path("code", string(INVITATION_RE), "The invitation code from the link.")
    return {
        f"{TEAM}/invitations": {
            "parameters": [TEAM_PARAM],
            "get": operation(
                "listInvitations",
                "A team's pending invitations",
                "teams",
                {
                    "200": json_response("Unused and unexpired invitations, newest first.", ref("InvitationList")),
                    **errors(400, 401, 403, 404),
                },
                auth=REQUIRED_AUTH,
                description="Team owners and staff only.",
            ),
            "post": operation(
                "createInvitation",
                "Invite someone into a team",
                "teams",
                {"201": json_response("The invitation and its link.", ref("NewInvitation")), **errors(*WRITES)},
                auth=REQUIRED_AUTH,
                description="Team owners and staff only. The link works once and expires after the registry's "
                "`invitation_days` (7 unless configured).",
            ),
        },
        f"{TEAM}/invitations/{{invitation_id}}": {
            "parameters": [TEAM_PARAM, path("invitation_id", ROW_ID, "The invitation's `id`.")],
            "delete": operation(
                "revokeInvitation",
                "Revoke a pending invitation",
                "teams",
                {**no_content("Revoked: its link no longer works."), **errors(*WRITES, 409)},
                auth=REQUIRED_AUTH,
                description="Team owners and staff only; 409 if it was already used.",
            ),
        },
        f"{PREFIX}/invitations/{{code}}": {
            "parameters": [code],
            "get": operation(
                "previewInvitation",
                "Which team an invitation leads to",
                "teams",
                {"200": json_response("The team.", ref("InvitationPreview")), **errors(400, 401, 404)},
                description="Needs no sign-in. 400 with the reason for a used or expired invitation, or one whose "
                "team was deleted; 404 for an unknown or revoked one.",
            ),
            "post": operation(
                "acceptInvitation",
                "Accept an invitation and join its team",
                "teams",
                {"200": json_response("The team, now with the caller.", ref("Team")), **errors(*WRITES, 409)},
                auth=REQUIRED_AUTH,
                description="The invitation is used up (unless the caller was already a member): a second use "
                "answers 400.",
            ),
        },
    }


def role_paths() -> dict[str, Schema]:
    add = {
        "type": "object",
        "required": ["user"],
        "properties": {"user": USERNAME, "role": {**role_enum(Role), "default": Role.CONTRIBUTOR.value}},
    }
    change = {"type": "object", "required": ["role"], "properties": {"role": role_enum(Role)}}
    member = ref("CollectionMember")
    rule = (
        "Owners may give a role only to people who share one of their teams (403 otherwise); admins may give "
        "it to anyone. Owners push and manage; contributors pull, private collections included."
    )
    keeps = "Refused (409) if it would leave the collection without an owner."
    starred = json_response("The collection, with its new star count.", ref("Collection"))
    return {
        f"{COLLECTION}/members": {
            "parameters": [COLLECTION_PARAM],
            "get": operation(
                "listCollectionMembers",
                "Who has a role in a collection",
                "members",
                {
                    "200": json_response("Owners first, then by name.", ref("CollectionMemberList")),
                    **errors(400, 401, 404),
                },
            ),
            "post": operation(
                "addCollectionMember",
                "Give someone a role in a collection",
                "members",
                {"201": json_response("Added.", member), **errors(*WRITES, 409)},
                body=json_body(add),
                auth=REQUIRED_AUTH,
                description=f"{rule} 409 if the user already has a role: change it instead.",
            ),
        },
        f"{COLLECTION}/members/{{user}}": {
            "parameters": [COLLECTION_PARAM, USER_PARAM],
            "patch": operation(
                "setCollectionRole",
                "Change someone's role in a collection",
                "members",
                {"200": json_response("The new role.", member), **errors(*WRITES, 409)},
                body=json_body(change),
                auth=REQUIRED_AUTH,
                description=f"{rule} {keeps}",
            ),
            "delete": operation(
                "removeCollectionMember",
                "Take someone's role in a collection away",
                "members",
                {**no_content("Removed."), **errors(*WRITES, 409)},
                auth=REQUIRED_AUTH,
                description=keeps,
            ),
        },
        f"{COLLECTION}/star": {
            "parameters": [COLLECTION_PARAM],
            "put": operation(
                "starCollection",
                "Star a collection",
                "stars",
                {"200": starred, **errors(*WRITES)},
                auth=REQUIRED_AUTH,
                description="Starring twice changes nothing.",
            ),
            "delete": operation(
                "unstarCollection",
                "Remove one's star from a collection",
                "stars",
                {"200": starred, **errors(*WRITES)},
                auth=REQUIRED_AUTH,
                description="Unstarring a collection one has not starred changes nothing.",
            ),
        },
        f"{PREFIX}/user/stars": {
            "get": operation(
                "listStars",
                "The collections the caller starred",
                "stars",
                {"200": json_response("Most recently starred first.", ref("CollectionList")), **errors(401)},
                auth=REQUIRED_AUTH,
                description="Only those the caller may still see.",
            ),
        },
    }


def share_paths() -> dict[str, Schema]:
    image = [*CONTAINER_PARAMS, REF_PARAM]
    create = {
        "type": "object",
        "properties": {
            "days": {
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_DAYS,
                "description": "How long the link works: up to the registry's `max_share_days` (30 unless "
                "configured; more is a 400).",
            }
        },
    }
    owners = "Owners of the collection only (403 for others who can see it)."
    return {
        f"{CONTAINER}/images/{{ref}}/shares": {
            "parameters": image,
            "get": operation(
                "listShares",
                "An image's share links",
                "shares",
                {
                    "200": json_response("Every link, expired ones too, newest first.", ref("ShareList")),
                    **errors(400, 401, 403, 404),
                },
                parameters=[ARCH_QUERY],
                auth=REQUIRED_AUTH,
                description=owners,
            ),
            "post": operation(
                "createShare",
                "Make a download link for an image",
                "shares",
                {"201": json_response("The link; its token is shown only here.", ref("NewShare")), **errors(*WRITES)},
                parameters=[ARCH_QUERY],
                body=json_body(create, required=False),
                auth=REQUIRED_AUTH,
                description=f"{owners} Anyone with the link may download this one image, without signing in, "
                "until it expires or is revoked.",
            ),
        },
        f"{CONTAINER}/images/{{ref}}/shares/{{share_id}}": {
            "parameters": [*image, path("share_id", ROW_ID, "The link's `id`.")],
            "delete": operation(
                "revokeShare",
                "Revoke a share link",
                "shares",
                {**no_content("Revoked: the link no longer works."), **errors(*WRITES)},
                parameters=[ARCH_QUERY],
                auth=REQUIRED_AUTH,
                description=owners,
            ),
        },
        "/shares/{token}": {
            "parameters": [path("token", string(SHARE_RE), "The link's token.")],
            "get": share_download_operation("downloadShare", "Download the image a share link names"),
            "head": share_download_operation("headShare", "The size and ETag of a shared image"),
        },
    }


def share_download_operation(operation_id: str, summary: str) -> Schema:
    return operation(
        operation_id,
        summary,
        "shares",
        download_responses(),
        parameters=RANGE_PARAMS,
        auth=[{}],
        description="Needs no sign-in. An expired, revoked or unknown link is a 404 whose message says which. "
        "Downloading from the first byte counts on the link and on the image.",
    )


def probe_paths() -> dict[str, Schema]:
    library_unauthorized = json_response("No valid token was sent.", ref("LibraryError"))
    return {
        "/api/openapi.json": {
            "get": operation(
                "getOpenApi",
                "This document",
                "documentation",
                {"200": json_response("The OpenAPI 3 document of the native API.", {"type": "object"})},
                auth=[{}],
            )
        },
        "/version": {
            "get": operation(
                "getVersion",
                "The registry's version, as the library client asks it",
                "library probes",
                {"200": json_response("The version and the library API version.", ref("Version"))},
                auth=[{}],
            )
        },
        "/v1/token-status": {
            "get": operation(
                "getTokenStatus",
                "Check a token, as `apptainer remote login` does",
                "library probes",
                {"200": json_response("The token is valid.", ref("TokenStatus")), "401": library_unauthorized},
                auth=REQUIRED_AUTH,
            )
        },
    }


def error_responses() -> dict[str, Schema]:
    headers = {
        401: {"WWW-Authenticate": header('`Bearer realm="sregistry"`.')},
        416: {"Content-Range": header("`bytes */<size>`: the size of the file.")},
        429: {"Retry-After": header("Seconds until the limit's window ends.", {"type": "integer"})},
    }
    return {name: json_response(text, ref("Error"), headers.get(status)) for status, (name, text) in ERRORS.items()}


DESCRIPTION = """\
The native API of the registry: collections of containers, their tags and images, uploads and downloads.

**Authentication.** Send `Authorization: Bearer sreg_...` with a token made on the registry's token page,
by `POST /api/v1/user/tokens` or by `sregistry-jupyter admin`. The scheme is matched case-insensitively
(`token` is accepted too). Without a token the caller is anonymous and sees only public collections; an
invalid, expired or revoked token is a 401 rather than anonymous access. Private things the caller may not
see answer exactly like things that do not exist (404).

**Errors** are JSON objects `{"code": ..., "message": ...}` with the HTTP status; `code` is stable.
"""


def build_spec(title: str) -> dict[str, Any]:
    """The whole document; ``title`` is the registry's configured name."""
    paths: dict[str, Schema] = {}
    parts = (
        user_paths,
        collection_paths,
        container_paths,
        image_paths,
        team_paths,
        role_paths,
        share_paths,
        stats_paths,
        probe_paths,
    )
    for part in parts:
        paths.update(part())
    for path, item in paths.items():
        if not path.startswith(("/api/v1/", "/shares/")):
            continue
        for method in HTTP_METHODS:
            if method in item:
                item[method]["responses"].setdefault("429", {"$ref": "#/components/responses/TooManyRequests"})
    return {
        "openapi": "3.0.3",
        "info": {"title": f"{title} API", "version": __version__, "description": DESCRIPTION},
        "tags": [
            {"name": "collections", "description": "Namespaces of containers, public or private."},
            {"name": "containers", "description": "Named containers inside a collection."},
            {"name": "images", "description": "Uploaded SIF files, addressed by tag or digest."},
            {"name": "tags", "description": "Names pointing at images, per architecture."},
            {"name": "members", "description": "Roles in collections: owners push and manage, contributors pull."},
            {"name": "teams", "description": "Teams, their members and invitations."},
            {"name": "stars", "description": "Collections users have starred."},
            {"name": "shares", "description": "Download links for one image that work without signing in."},
            {"name": "user", "description": "The signed-in user and their API tokens."},
            {"name": "stats", "description": "Figures for plots and dashboards."},
            {"name": "documentation", "description": "This document."},
            {"name": "library probes", "description": "What the Sylabs library client asks before anything else."},
        ],
        "paths": paths,
        "security": OPTIONAL_AUTH,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "sreg_<key id>_<secret>",
                    "description": "An API token `sreg_...`; the scheme name is matched case-insensitively.",
                }
            },
            "schemas": schemas(),
            "responses": error_responses(),
        },
    }
