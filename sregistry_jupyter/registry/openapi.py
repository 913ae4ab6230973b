"""The OpenAPI 3.0 document of the native API, generated from the route table and the shared models.

``handlers/native.py`` says which paths exist, which handler serves each, and for each method the model of
its body and of its answer, its error statuses and the scope it needs; ``sregistry_jupyter.models`` gives
the shapes (JSON Schema, as pydantic writes it). Only binary transfers and the error responses are
described here. ``tests/registry/test_openapi.py`` holds the document to the running server.

The document is OpenAPI 3.0 rather than 3.1 because the Swagger UI the registry serves (from
``swagger_ui_bundle``) renders only 3.0; ``openapi30`` rewrites the few JSON Schema 2020-12 forms pydantic
writes (``null`` types, ``examples``, numeric exclusive bounds, ``const``) into their 3.0 spellings.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from .. import __version__, models
from .access import Action, scope_needed
from .handlers.native import PATH_PARAMS, ROUTES, Operation, Query, Route

Schema = dict[str, Any]
REF_TEMPLATE = "#/components/schemas/{model}"
OPTIONAL_AUTH: list[dict[str, list]] = [{}, {"bearerAuth": []}]
REQUIRED_AUTH: list[dict[str, list]] = [{"bearerAuth": []}]
NO_AUTH: list[dict[str, list]] = [{}]

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
ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"description": '`Bearer realm="sregistry"`.', "schema": {"type": "string"}}},
    416: {"Content-Range": {"description": "`bytes */<size>`: the size of the file.", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds until the limit's window ends.", "schema": {"type": "integer"}}},
}
GROUPS = {
    "collections": "Namespaces of containers, public or private.",
    "containers": "Named containers inside a collection.",
    "images": "Uploaded SIF files, addressed by tag or digest.",
    "tags": "Names pointing at images, per architecture.",
    "members": "Roles in collections: owners push and manage, contributors pull.",
    "teams": "Teams, their members and invitations.",
    "stars": "Collections users have starred.",
    "shares": "Download links for one image that work without signing in.",
    "user": "The signed-in user and their API tokens.",
    "staff": "The registry's staff: accounts, robot accounts and the audit trail.",
    "stats": "Figures for plots and dashboards.",
    "documentation": "This document.",
}
DESCRIPTION = """\
The native API of the registry: collections of containers, their tags and images, uploads and downloads.

**Authentication.** Send `Authorization: Bearer sreg_...` with a token made on the registry's token page,
by `POST /api/v1/user/tokens` or by `sregistry-jupyter admin`. The scheme is matched case-insensitively
(`token` is accepted too). Without a token the caller is anonymous and sees only public collections; an
invalid, expired or revoked token is a 401 rather than anonymous access. Private things the caller may not
see answer exactly like things that do not exist (404). A token's scope (`read`, `write`, `admin`) caps what
it may do; each operation's `x-token-scope` is the weakest scope that may perform it.

**Errors** are JSON objects `{"code": ..., "message": ...}` with the HTTP status; `code` is stable.

**Freshness.** Where several registry processes serve one database, a read of collections, containers, tags
or images may be answered from what the receiving process read a moment ago: never older than a change made
through that process, at most about a second older than one made through another. Send
`Cache-Control: no-cache` to have it read afresh.
"""


JSON_NULL: Schema = {"type": "object", "nullable": True, "enum": [None]}


def openapi30(schema: Any) -> Any:
    """``schema`` (JSON Schema 2020-12, as pydantic writes it) in the OpenAPI 3.0 dialect."""
    if isinstance(schema, list):
        return [openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    found = {key: openapi30(value) for key, value in schema.items()}
    if found.get("type") == "null":
        return dict(JSON_NULL)
    choices = found.get("anyOf")
    if choices and {"type": "null"} in schema["anyOf"]:
        others = [c for c in choices if c != JSON_NULL]
        if len(others) == 1 and "$ref" not in others[0]:
            del found["anyOf"]
            found = {**others[0], **found, "nullable": True}
        else:
            found["anyOf"] = [*others, dict(JSON_NULL)]
    if "examples" in found:
        found["example"] = found.pop("examples")[0]
    if "const" in found:
        found["enum"] = [found.pop("const")]
    if None in found.get("enum", ()):
        found["nullable"] = True
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(found.get(exclusive), int | float) and not isinstance(found[exclusive], bool):
            found[bound], found[exclusive] = found[exclusive], True
    return found


class Untitled(GenerateJsonSchema):
    """Pydantic's JSON Schema without a ``title`` on every property (the property's name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def header(description: str, schema: Schema | None = None) -> Schema:
    return {"description": description, "schema": schema or {"type": "string"}}


def binary() -> Schema:
    return {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


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
    return {
        "200": {"description": "The whole file.", "headers": download_headers(), "content": binary()},
        "206": {"description": "The requested range.", "headers": download_headers(partial=True), "content": binary()},
        "304": {"description": "`If-None-Match` names this image's ETag.", "headers": {"ETag": header("The ETag.")}},
        **error_refs(400, 401, 404, 416),
    }


RANGE_PARAMS: list[Schema] = [
    {
        "name": "Range",
        "in": "header",
        "schema": {"type": "string", "example": "bytes=0-1023"},
        "description": "One `bytes` range (`first-last`, `first-` or `-suffix`). Several ranges, inverted or "
        "unsatisfiable ones are a 416; other units are ignored.",
    },
    {
        "name": "If-None-Match",
        "in": "header",
        "schema": {"type": "string"},
        "description": "ETags; a match answers 304 without a body.",
    },
    {
        "name": "If-Range",
        "in": "header",
        "schema": {"type": "string"},
        "description": "Honour `Range` only if this is the image's ETag.",
    },
]
DOWNLOAD_NOTE = (
    "Downloading from the first byte counts as a pull. The ETag is the digest, so a cached copy is valid for ever."
)
SHARE_NOTE = (
    "Needs no sign-in. An expired, revoked or unknown link is a 404 whose message says which. Downloading from "
    "the first byte counts on the link and on the image."
)
UPLOAD_BODY: Schema = {
    "required": True,
    "description": "The raw bytes of the image, streamed; nothing is recorded unless they match `digest`.",
    "content": binary(),
}


def error_refs(*statuses: int) -> dict[str, Schema]:
    return {str(status): {"$ref": f"#/components/responses/{ERRORS[status][0]}"} for status in statuses}


def query_param(query: Query) -> Schema:
    param: Schema = {
        "name": query.name,
        "in": "query",
        "required": query.required,
        "schema": query.schema,
        "description": query.description,
    }
    if query.repeated:
        param.update(style="form", explode=True)
    return param


def path_params(route: Route) -> list[Schema]:
    found = []
    for name in route.params:
        param = PATH_PARAMS[name]
        schema = openapi30(TypeAdapter(param.kind).json_schema(schema_generator=Untitled))
        found.append({"name": name, "in": "path", "required": True, "schema": schema, "description": param.description})
    return found


def scope_of(operation: Operation) -> str | None:
    scope = operation.scope
    return scope_needed(scope) if isinstance(scope, Action) else scope


def first_line(model: type[BaseModel]) -> str | None:
    doc = model.__doc__
    return doc.strip().splitlines()[0] if doc and doc is not BaseModel.__doc__ else None


def answers(operation: Operation, refs: dict[tuple[type[BaseModel], JsonSchemaMode], Schema]) -> dict[str, Schema]:
    """The responses of ``operation``: its success, its errors, and 429 (every request counts against limits)."""
    if operation.transfer in ("download", "share"):
        responses = download_responses()
    elif operation.transfer == "document":
        responses = {
            "200": {
                "description": "The OpenAPI document of the native API.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        }
    elif operation.answer is None:
        responses = {str(operation.status): {"description": "Done; nothing to say."}}
    else:
        success: Schema = {
            "description": first_line(operation.answer) or operation.summary,
            "content": {"application/json": {"schema": refs[(operation.answer, "serialization")]}},
        }
        if operation.headers:
            success["headers"] = {name: header(text) for name, text in operation.headers}
        responses = {str(operation.status): success}
    responses.update(error_refs(*operation.errors))
    if operation.transfer != "document":
        responses.setdefault("429", error_refs(429)["429"])
    return responses


def describe(operation: Operation, refs: dict[tuple[type[BaseModel], JsonSchemaMode], Schema]) -> Schema:
    scope = scope_of(operation)
    notes = [operation.description] if operation.description else []
    if operation.transfer in ("download", "share"):
        notes.append(DOWNLOAD_NOTE if operation.transfer == "download" else SHARE_NOTE)
    if scope is not None:
        notes.append(f"Needs a token of scope `{scope}` or more (a signed-in session has every scope).")
    security = REQUIRED_AUTH if operation.signed_in else OPTIONAL_AUTH
    if operation.transfer in ("share", "document"):
        security = NO_AUTH
    described: Schema = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": [operation.group],
        "security": security,
    }
    if notes:
        described["description"] = " ".join(notes)
    if scope is not None:
        described["x-token-scope"] = scope
    params = [query_param(q) for q in operation.queries]
    if operation.transfer in ("download", "share"):
        params += RANGE_PARAMS
    if params:
        described["parameters"] = params
    if operation.body is not None:
        described["requestBody"] = {
            "required": operation.body_required,
            "content": {"application/json": {"schema": refs[(operation.body, "validation")]}},
        }
    elif operation.transfer == "upload":
        described["requestBody"] = UPLOAD_BODY
    described["responses"] = answers(operation, refs)
    return described


def documented_routes() -> list[Route]:
    return [route for route in ROUTES if route.undocumented is None]


def schemas() -> tuple[dict[tuple[type[BaseModel], JsonSchemaMode], Schema], dict[str, Schema]]:
    """Every model the table names, as components, and the reference to each."""
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(models.ErrorBody, "serialization")]
    for route in documented_routes():
        for operation in route.operations:
            if operation.answer is not None:
                wanted.append((operation.answer, "serialization"))
            if operation.body is not None:
                wanted.append((operation.body, "validation"))
    refs, document = models_json_schema(
        list(dict.fromkeys(wanted)), ref_template=REF_TEMPLATE, schema_generator=Untitled
    )
    return refs, openapi30(document.get("$defs", {}))


def error_responses(error_ref: Schema) -> dict[str, Schema]:
    return {
        name: {
            "description": text,
            "content": {"application/json": {"schema": error_ref}},
            **({"headers": ERROR_HEADERS[status]} if status in ERROR_HEADERS else {}),
        }
        for status, (name, text) in ERRORS.items()
    }


def build_spec(title: str) -> dict[str, Any]:
    """The whole document; ``title`` is the registry's configured name."""
    refs, components = schemas()
    paths: dict[str, Schema] = {}
    for route in documented_routes():
        item: Schema = {}
        if route.params:
            item["parameters"] = path_params(route)
        for operation in route.operations:
            item[operation.method] = describe(operation, refs)
        paths[route.path] = item
    return {
        "openapi": "3.0.3",
        "info": {"title": f"{title} API", "version": __version__, "description": DESCRIPTION},
        "tags": [{"name": name, "description": text} for name, text in GROUPS.items()],
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
            "schemas": components,
            "responses": error_responses(refs[(models.ErrorBody, "serialization")]),
        },
    }
