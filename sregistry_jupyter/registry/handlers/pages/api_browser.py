"""A browsable view of the native API, drawn from the OpenAPI document the registry serves.

The page reads the document from ``docs.document``, as ``/api/openapi.json`` does, so it always shows
what the registry answers. Each GET can be tried from the page with the
viewer's own session (``static/api-browser.js``); writes are listed but not sent from here, so browsing
the API never changes anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .. import docs
from .base import PageHandler

METHODS = ("get", "head", "post", "put", "patch", "delete")
TRIED_IN = ("path", "query")


@dataclass(frozen=True)
class Parameter:
    name: str
    where: str
    required: bool
    type: str
    description: str
    default: Any = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    description: str
    anchor: str
    parameters: list[Parameter]
    body: str | None
    responses: list[tuple[str, str]]

    @property
    def tryable(self) -> bool:
        """A GET whose parameters the page's form can fill (headers such as ``Range`` are left out)."""
        return self.method == "GET"

    @property
    def form_parameters(self) -> list[Parameter]:
        return [p for p in self.parameters if p.where in TRIED_IN]


@dataclass(frozen=True)
class Section:
    name: str
    description: str
    operations: list[Operation] = field(default_factory=list)


def resolve(document: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/components/...``) to what it names."""
    seen = 0
    while "$ref" in item and seen < 10:
        target: Any = document
        for part in item["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        item, seen = target, seen + 1
    return item


def type_of(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    for combined in ("anyOf", "oneOf"):
        if combined in schema:
            return " or ".join(type_of(part) for part in schema[combined])
    return str(schema.get("type", "any"))


def parameter(document: dict[str, Any], raw: dict[str, Any]) -> Parameter:
    item = resolve(document, raw)
    schema = resolve(document, item.get("schema", {}))
    return Parameter(
        name=str(item.get("name", "")),
        where=str(item.get("in", "query")),
        required=bool(item.get("required", False)),
        type=type_of(schema),
        description=str(item.get("description", schema.get("description", ""))),
        default=schema.get("default"),
        choices=tuple(str(choice) for choice in schema.get("enum", ())),
    )


def body_of(document: dict[str, Any], operation: dict[str, Any]) -> str | None:
    body = resolve(document, operation.get("requestBody", {}))
    content = body.get("content", {})
    if not content:
        return None
    kind, value = next(iter(content.items()))
    schema = value.get("schema", {}) if isinstance(value, dict) else {}
    return f"{kind}: {type_of(schema)}" if schema else kind


def anchor_of(method: str, path: str) -> str:
    """An element id for an operation: ``GET /api/v1/collections/{collection}`` is
    ``get-api-v1-collections-collection``."""
    return re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")


def sections(document: dict[str, Any]) -> list[Section]:
    """The document's operations grouped by tag, in the order the document lists its tags."""
    grouped = {tag["name"]: Section(tag["name"], tag.get("description", "")) for tag in document.get("tags", [])}
    for path, item in document.get("paths", {}).items():
        shared = item.get("parameters", [])
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            own = operation.get("parameters", [])
            names = {resolve(document, p).get("name") for p in own}
            raw = [p for p in shared if resolve(document, p).get("name") not in names] + own
            responses = [
                (str(code), str(resolve(document, answer).get("description", "")))
                for code, answer in operation.get("responses", {}).items()
            ]
            found = Operation(
                method=method.upper(),
                path=path,
                summary=str(operation.get("summary", "")),
                description=str(operation.get("description", "")),
                anchor=anchor_of(method, path),
                parameters=[parameter(document, p) for p in raw],
                body=body_of(document, operation),
                responses=responses,
            )
            tag = (operation.get("tags") or ["other"])[0]
            grouped.setdefault(tag, Section(tag, "")).operations.append(found)
    return [section for section in grouped.values() if section.operations]


class ApiBrowserPage(PageHandler):
    """Every endpoint of the native API with its parameters and answers, and a form to try each GET."""

    def get(self) -> None:
        document = json.loads(docs.document(self.registry.name))
        self.render(
            "api_browser.html",
            info=document.get("info", {}),
            sections=sections(document),
            base=self.base_url(),
        )


def routes() -> list[tuple[str, type]]:
    return [(r"/api/?", ApiBrowserPage)]
