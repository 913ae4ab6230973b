"""The OpenAPI document held to the running registry.

It must be valid OpenAPI 3.0, document exactly the routes and methods the server has, describe every
status and body a realistic session receives, be browsable on a Swagger UI page that needs no CDN, and
survive a bounded fuzz run without a single server error.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate as validate_spec
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from tornado import web

from sregistry_jupyter.registry.context import Registry
from sregistry_jupyter.registry.handlers import api, native
from sregistry_jupyter.registry.handlers.pages.errors import UnknownAddress
from sregistry_jupyter.registry.openapi import build_spec
from sregistry_jupyter.registry.storage import FilesystemBlobStore
from sregistry_jupyter.registry.webapp import make_app
from tests.gotools import make_sif

SPEC = build_spec("Test Registry")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
GROUP_RE = re.compile(r"\((?:[^()\\]|\\.)*\)")
PLACEHOLDER_RE = re.compile(r"\{[^}]+\}")
MAX_JSON_BODY = 4096
IMAGES = "/api/v1/collections/lab/containers/tool/images"
TAGS = "/api/v1/collections/lab/containers/tool/tags"
FUZZ_EXAMPLES = 200


@pytest.fixture
def registry_settings() -> dict:
    return {"max_json_body": MAX_JSON_BODY}


def digest_of(data: bytes) -> str:
    return "sha256." + hashlib.sha256(data).hexdigest()


def operations(path_item: dict[str, Any]) -> set[str]:
    return {method for method in HTTP_METHODS if method in path_item}


def implemented(handler: type[web.RequestHandler]) -> set[str]:
    """The HTTP methods a handler class answers; Tornado's defaults answer 405."""
    return {method for method in HTTP_METHODS if getattr(handler, method) is not getattr(web.RequestHandler, method)}


def template_of_route(pattern: str) -> str:
    return GROUP_RE.sub("{}", pattern)


def template_of_path(path: str) -> str:
    return PLACEHOLDER_RE.sub("{}", path)


def example_of_path(path: str) -> str:
    """A concrete URL path for a documented one: numeric ids where the route wants digits."""
    return PLACEHOLDER_RE.sub(lambda m: "7" if m.group(0) == "{token_id}" else "abc", path)


def app_rules(tmp_path: Path) -> list[tuple[re.Pattern[str], type]]:
    """The routing table of the real application, in the order Tornado tries it."""
    engine = create_engine("sqlite://")
    context = Registry(
        engine=engine,
        session_factory=sessionmaker(engine),
        store=FilesystemBlobStore(root=str(tmp_path)),
        secret_key=b"k",
    )
    app = make_app(context)
    return [(rule.matcher.regex, rule.target) for rule in app.wildcard_router.rules]


def test_the_document_is_valid_openapi_3():
    validate_spec(SPEC)
    assert SPEC["openapi"] == "3.0.3"
    bearer = SPEC["components"]["securitySchemes"]["bearerAuth"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")


def test_every_api_route_is_documented_with_the_methods_its_handler_implements():
    documented = {template_of_path(path): path for path in SPEC["paths"]}
    for route in native.ROUTES:
        if route.undocumented:
            continue
        pattern, handler = route.pattern, route.handler
        template = template_of_route(pattern)
        assert template in documented, f"route {pattern} is not documented"
        assert operations(SPEC["paths"][documented[template]]) == implemented(handler), pattern


def test_the_native_routes_of_the_application_are_exactly_the_documented_paths(tmp_path):
    """Whoever adds a native route to the application (anywhere, not only in the route table) documents it,
    or says in the table why its protocol is described elsewhere."""
    native_prefixes = ("/api/v1/", "/shares/", "/api/openapi.json")
    routed = {
        template_of_route(regex.pattern.removesuffix("$"))
        for regex, handler in app_rules(tmp_path)
        if regex.pattern.startswith(native_prefixes) and handler is not api.ApiNotFoundHandler
    }
    elsewhere = {template_of_path(route.path) for route in native.ROUTES if route.undocumented}
    assert routed - elsewhere == {template_of_path(path) for path in SPEC["paths"]}


def test_every_documented_path_is_routed_to_a_handler_with_exactly_its_methods(tmp_path):
    rules = app_rules(tmp_path)
    for path, item in SPEC["paths"].items():
        concrete = example_of_path(path)
        handler = next(target for regex, target in rules if regex.match(concrete))
        assert handler not in (api.ApiNotFoundHandler, UnknownAddress), f"{path} reaches no handler"
        assert operations(item) == implemented(handler), path


def path_regex(path: str) -> re.Pattern[str]:
    parts = ["[^/]+" if PLACEHOLDER_RE.fullmatch(part) else re.escape(part) for part in path.split("/")]
    return re.compile("/".join(parts))


class ResponseChecker:
    """An httpx response hook holding every response to the operation its request names in the document.

    The status must be documented for that operation, the documented headers present, and a JSON body
    valid against the documented schema (OpenAPI 3.0 semantics, formats checked). What was seen is kept
    so that the test can assert that the session covered the whole document.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.paths = [(path_regex(path), path) for path in spec["paths"]]
        self.seen: set[tuple[str, str, int]] = set()

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        method, url_path = response.request.method.lower(), response.request.url.path
        template = next((path for regex, path in self.paths if regex.fullmatch(url_path)), None)
        assert template is not None, f"{url_path} is not documented"
        operation = self.spec["paths"][template].get(method)
        assert operation is not None, f"{method.upper()} {template} is not documented"
        documented = operation["responses"].get(str(response.status_code))
        assert documented is not None, (
            f"{method.upper()} {url_path} answered {response.status_code}, not documented: {response.text[:300]}"
        )
        documented = self.resolve(documented)
        for name in documented.get("headers", {}):
            assert name in response.headers, f"{method.upper()} {url_path}: no {name} header"
        self.check_body(response, method, documented)
        self.seen.add((method, template, response.status_code))

    def resolve(self, item: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in item:
            node: Any = self.spec
            for part in item["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            item = node
        return item

    def check_body(self, response: httpx.Response, method: str, documented: dict[str, Any]) -> None:
        content = documented.get("content")
        if content is None or method == "head":
            assert response.content == b"", f"{response.request.url.path}: a body where none is documented"
            return
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        assert media_type in content, f"{response.request.url.path}: {media_type} is not documented"
        if media_type == "application/json":
            self.validate(content[media_type]["schema"], response.json())

    def validate(self, schema: dict[str, Any], instance: Any) -> None:
        validator = OAS30Validator(
            {**schema, "components": self.spec["components"]}, format_checker=oas30_format_checker
        )
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]
        assert not errors, f"{instance!r:.500} does not match {schema}: {errors}"

    def documented_operations(self) -> set[tuple[str, str]]:
        return {(method, path) for path, item in self.spec["paths"].items() for method in operations(item)}


@pytest.fixture
def checker() -> ResponseChecker:
    return ResponseChecker(SPEC)


@pytest.fixture
def checked(registry, checker):
    """A factory of clients whose every response the checker validates."""

    def client(token: str | None = None) -> httpx.Client:
        return registry.client(token, event_hooks={"response": [checker]})

    return client


@pytest.fixture(scope="module")
def sif_file(mksif: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("sif") / "tool.sif"
    make_sif(mksif, path, deffile="Bootstrap: docker\nFrom: alpine\n", labels={"maintainer": "Ada"})
    return path.read_bytes()


def push(client: httpx.Client, data: bytes, tags: tuple[str, ...] = ("latest",), **params: Any) -> httpx.Response:
    query = {"digest": digest_of(data), "tag": list(tags), **params}
    return client.post(IMAGES, params=query, content=data)


def status(response: httpx.Response, expected: int) -> dict[str, Any] | None:
    assert response.status_code == expected, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.headers.get("Content-Type") == "application/json" else None


def test_a_realistic_session_matches_the_document(registry, checked, checker, sif_file):
    anon, alice, bob = checked(), checked(registry.add_user("alice")), checked(registry.add_user("bob"))
    forged = checked("sreg_" + "a" * 12 + "_" + "b" * 43)

    assert status(anon.get("/api/openapi.json"), 200) == build_spec(registry.context.name)
    tokens(registry, checked, anon, alice, bob, forged)
    collections_(anon, alice, bob)
    raw, sif = uploads(alice, bob, sif_file)
    browsing(anon, alice, bob, raw, sif)
    tagging(anon, alice, sif)
    downloads(anon, sif, sif_file)
    teams(checked(registry.add_user("steve", staff=True)), anon, alice, bob)
    roles_and_stars(anon, alice, bob)
    share_links(anon, alice, bob, sif_file)
    statistics(anon, alice)
    staff_work(checked(registry.add_user("sam", staff=True)), anon, alice)
    deletions(anon, alice, raw, sif)

    exercised = {(method, path) for method, path, _ in checker.seen}
    assert exercised == checker.documented_operations()
    statuses = {code for _, _, code in checker.seen}
    assert statuses >= {200, 201, 204, 206, 304, 400, 401, 403, 404, 409, 411, 413, 416}


def tokens(registry, checked, anon, alice, bob, forged) -> None:
    assert status(alice.get("/api/v1/user"), 200)["name"] == "alice"
    assert status(anon.get("/api/v1/user"), 401)["code"] == "UNAUTHORIZED"
    assert status(forged.get("/api/v1/user"), 401)
    created = status(
        alice.post("/api/v1/user/tokens", json={"name": "ci", "scope": "write", "expires_in_days": 7}), 201
    )
    assert created["token"].startswith("sreg_") and created["expires"]
    writer = checked(created["token"])
    assert status(writer.post("/api/v1/user/tokens", json={"name": "more"}), 403)["code"] == "DENIED"
    assert status(alice.post("/api/v1/user/tokens", json={"scope": "root"}), 400)["code"] == "INVALID"
    assert status(alice.post("/api/v1/user/tokens", json={"name": "nul\u0000"}), 400)
    listed = status(alice.get("/api/v1/user/tokens"), 200)["items"]
    assert {t["name"] for t in listed} >= {"ci"}
    first = next(t["id"] for t in listed if t["name"] != "ci")
    assert status(writer.delete(f"/api/v1/user/tokens/{first}"), 403)
    assert status(bob.delete(f"/api/v1/user/tokens/{created['id']}"), 404)
    assert status(alice.delete(f"/api/v1/user/tokens/{created['id']}"), 204) is None
    assert status(writer.get("/api/v1/user"), 401)
    assert status(anon.delete("/api/v1/user/tokens/2147483648"), 401)
    assert status(alice.delete("/api/v1/user/tokens/2147483648"), 400)


def collections_(anon, alice, bob) -> None:
    made = alice.post("/api/v1/collections", json={"name": "lab", "description": "Images of the lab"})
    assert status(made, 201)["owners"] == ["alice"]
    assert made.headers["Location"] == "/api/v1/collections/lab"
    assert status(alice.post("/api/v1/collections", json={"name": "lab"}), 409)["code"] == "CONFLICT"
    assert status(alice.post("/api/v1/collections", json={"name": "Not Valid"}), 400)
    assert status(anon.post("/api/v1/collections", json={"name": "mine"}), 401)
    surrogate = b'{"name": "odd", "description": "\\ud800"}'
    assert status(alice.post("/api/v1/collections", content=surrogate), 400)
    too_big = {"name": "big", "description": "d" * MAX_JSON_BODY}
    assert status(alice.post("/api/v1/collections", json=too_big), 413)["code"] == "TOO_LARGE"
    assert status(bob.patch("/api/v1/collections/lab", json={"description": "mine now"}), 403)
    changed = status(alice.patch("/api/v1/collections/lab", json={"description": "The lab's images"}), 200)
    assert changed["description"] == "The lab's images"


def uploads(alice, bob, sif_file) -> tuple[str, str]:
    raw_bytes = b"not a SIF file, just bytes\n" * 100
    raw = status(push(alice, raw_bytes), 201)
    assert raw["sif"] is None and raw["tags"] == ["latest"]
    sif = status(push(alice, sif_file, tags=("v1",), description="a real SIF"), 201)
    assert sif["sif"]["partitions"] and sif["sif"]["labels"] == {"maintainer": "Ada"}
    assert status(push(alice, b"other", digest=digest_of(b"else")), 400)["code"] == "DIGEST_INVALID"
    assert status(push(alice, b"bytes", digest="sha256.nothex"), 400)["code"] == "INVALID"
    assert status(push(bob, b"intruder"), 409)["code"] == "CONFLICT"

    def chunks() -> Iterator[bytes]:
        yield b"streamed "
        yield b"without a length"

    unsized = alice.post(IMAGES, params={"digest": digest_of(b"streamed without a length")}, content=chunks())
    assert status(unsized, 411)["code"] == "LENGTH_REQUIRED"
    return raw["digest"], sif["digest"]


def browsing(anon, alice, bob, raw: str, sif: str) -> None:
    page = status(anon.get("/api/v1/collections", params={"q": "LAB", "sort": "-updated", "per_page": 5}), 200)
    assert [c["name"] for c in page["items"]] == ["lab"] and page["total"] == 1
    assert page["items"][0]["images"] == 2
    clamped = status(anon.get("/api/v1/collections", params={"page": 10**9, "per_page": 10**6}), 200)
    assert (clamped["page"], clamped["per_page"]) == (1_000_000, 100)
    assert status(anon.get("/api/v1/collections", params={"sort": "popularity"}), 400)
    assert status(anon.get("/api/v1/collections", params={"page": 0}), 400)
    detail = status(anon.get("/api/v1/collections/lab"), 200)
    assert [c["name"] for c in detail["containers_list"]] == ["tool"]
    assert status(anon.get("/api/v1/collections/nothing"), 404)["code"] == "NOT_FOUND"
    assert status(anon.get("/api/v1/collections/Not_Valid"), 400)
    assert [c["name"] for c in status(anon.get("/api/v1/collections/lab/containers"), 200)["items"]] == ["tool"]
    container = status(anon.get("/api/v1/collections/lab/containers/tool"), 200)
    assert {i["digest"] for i in container["images"]} == {raw, sif}
    assert status(anon.get("/api/v1/collections/lab/containers/none"), 404)
    assert len(status(anon.get(IMAGES), 200)["items"]) == 2
    assert status(anon.get(f"{IMAGES}/v1"), 200)["digest"] == sif
    assert status(anon.get(f"{IMAGES}/{raw}"), 200)["tags"] == ["latest"]
    assert status(anon.get(f"{IMAGES}/v1", params={"arch": "AMD 64"}), 400)
    assert status(anon.get(f"{IMAGES}/v9"), 404)
    assert [t["name"] for t in status(anon.get(TAGS), 200)["items"]] == ["latest", "v1"]


def tagging(anon, alice, sif: str) -> None:
    assert status(alice.put(f"{TAGS}/stable", json={"digest": sif}), 200)["frozen"] is False
    assert status(alice.put(f"{TAGS}/stable", json={"digest": sif, "frozen": True}), 200)["frozen"] is True
    assert status(alice.put(f"{TAGS}/stable", json={}), 400)
    refused = anon.put(f"{TAGS}/stable", json={"digest": sif})
    assert status(refused, 401)["code"] == "UNAUTHORIZED" and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert status(alice.delete(f"{TAGS}/stable"), 409)["code"] == "CONFLICT"
    assert status(push(alice, b"replacement", tags=("stable",)), 409)
    assert status(alice.delete(f"{TAGS}/latest"), 204) is None


def downloads(anon, sif: str, sif_file: bytes) -> None:
    url = f"{IMAGES}/v1/file"
    whole = anon.get(url)
    assert whole.status_code == 200 and whole.content == sif_file
    part = anon.get(url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == sif_file[:10]
    assert part.headers["Content-Range"] == f"bytes 0-9/{len(sif_file)}"
    refused = anon.get(url, headers={"Range": f"bytes={len(sif_file)}-"})
    assert status(refused, 416) and refused.headers["Content-Range"] == f"bytes */{len(sif_file)}"
    assert anon.get(url, headers={"If-None-Match": f'"{sif}"'}).status_code == 304
    stale = anon.get(url, headers={"Range": "bytes=0-9", "If-Range": '"sha256.other"'})
    assert stale.status_code == 200 and stale.content == sif_file
    head = anon.head(url)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(sif_file))
    assert status(anon.get(f"{IMAGES}/v9/file"), 404)


def teams(staff, anon, alice, bob) -> None:
    team = "/api/v1/teams/group"
    assert status(alice.post("/api/v1/teams", json={"name": "group"}), 403)
    assert status(staff.post("/api/v1/teams", json={"name": "group", "open": True}), 201)["owners"] == ["steve"]
    assert status(anon.get("/api/v1/teams"), 401)
    assert [t["name"] for t in status(bob.get("/api/v1/teams"), 200)["items"]] == ["group"]
    assert status(staff.patch(team, json={"description": "everyone"}), 200)["description"] == "everyone"
    assert status(alice.post(f"{team}/join"), 200)["your_role"] == "member"
    assert status(staff.post(f"{team}/members", json={"user": "alice"}), 409)
    assert status(staff.patch(f"{team}/members/alice", json={"role": "owner"}), 200)["role"] == "owner"
    invitation = status(alice.post(f"{team}/invitations"), 201)
    assert status(anon.get(f"/api/v1/invitations/{invitation['code']}"), 200)["team"] == "group"
    assert [i["id"] for i in status(alice.get(f"{team}/invitations"), 200)["items"]] == [invitation["id"]]
    assert status(bob.post(f"/api/v1/invitations/{invitation['code']}"), 200)["your_role"] == "member"
    assert status(bob.post(f"/api/v1/invitations/{invitation['code']}"), 400)
    spare = status(alice.post(f"{team}/invitations"), 201)
    assert status(bob.delete(f"{team}/invitations/{spare['id']}"), 403)
    assert status(alice.delete(f"{team}/invitations/{spare['id']}"), 204) is None
    assert status(bob.post(f"{team}/leave"), 204) is None
    assert status(staff.delete(f"{team}/members/steve"), 204) is None
    assert status(alice.post(f"{team}/members", json={"user": "bob"}), 201)["role"] == "member"
    assert len(status(bob.get(f"{team}/members"), 200)["items"]) == 2
    assert status(bob.get(team), 200)["owners"] == ["alice"]
    assert status(staff.post("/api/v1/teams", json={"name": "brief"}), 201)
    assert status(bob.delete("/api/v1/teams/brief"), 403)
    assert status(staff.delete("/api/v1/teams/brief"), 204) is None


def roles_and_stars(anon, alice, bob) -> None:
    members = "/api/v1/collections/lab/members"
    assert status(bob.post(members, json={"user": "bob", "role": "owner"}), 403)
    assert status(alice.post(members, json={"user": "bob"}), 201)["role"] == "contributor"
    assert [m["user"] for m in status(anon.get(members), 200)["items"]] == ["alice", "bob"]
    assert status(alice.patch(f"{members}/alice", json={"role": "contributor"}), 409)
    assert status(alice.patch(f"{members}/bob", json={"role": "owner"}), 200)["role"] == "owner"
    assert status(alice.delete(f"{members}/bob"), 204) is None
    assert status(bob.put("/api/v1/collections/lab/star"), 200)["stars"] == 1
    assert [c["name"] for c in status(bob.get("/api/v1/user/stars"), 200)["items"]] == ["lab"]
    assert status(bob.delete("/api/v1/collections/lab/star"), 200)["stars"] == 0
    assert status(anon.put("/api/v1/collections/lab/star"), 401)


def share_links(anon, alice, bob, sif_file: bytes) -> None:
    shares = f"{IMAGES}/v1/shares"
    assert status(bob.post(shares, json={"days": 2}), 403)
    assert status(alice.post(shares, json={"days": 0}), 400)
    share = status(alice.post(shares, json={"days": 2}), 201)
    assert [s["id"] for s in status(alice.get(shares), 200)["items"]] == [share["id"]]
    assert anon.get(share["path"]).content == sif_file
    assert anon.get(share["path"], headers={"Range": "bytes=0-9"}).status_code == 206
    assert anon.head(share["path"]).status_code == 200
    assert status(alice.delete(f"{shares}/{share['id']}"), 204) is None
    assert status(anon.get(share["path"]), 404)


def statistics(anon, alice) -> None:
    week = status(anon.get("/api/v1/stats", params={"days": 7}), 200)
    assert len(week["activity"]) == 7 and week["totals"]["images"] == 2
    assert sum(day["pushes"] for day in week["activity"]) == 2
    assert status(alice.get("/api/v1/stats", params={"days": 0}), 400)


def staff_work(sam, anon, alice) -> None:
    listed = status(sam.get("/api/v1/staff/users", params={"q": "ali", "per_page": 5}), 200)
    assert [a["name"] for a in listed["items"]] == ["alice"] and listed["total"] == 1
    assert status(alice.get("/api/v1/staff/users"), 403)["code"] == "DENIED"
    assert status(anon.get("/api/v1/staff/audit"), 401)
    assert status(sam.get("/api/v1/staff/audit", params={"kind": "nonsense"}), 400)
    robot = sam.post("/api/v1/staff/robots", json={"name": "ci-bot"})
    assert status(robot, 201)["kind"] == "robot" and robot.headers["Location"] == "/api/v1/staff/users/ci-bot"
    assert status(sam.post("/api/v1/staff/robots", json={"name": "ci-bot"}), 409)
    assert status(sam.get(robot.headers["Location"]), 200)["tokens"] == 0
    assert status(sam.get("/api/v1/staff/users/nobody"), 404)
    token = status(sam.post("/api/v1/staff/robots/ci-bot/tokens", json={"scope": "read"}), 201)
    assert token["token"].startswith("sreg_") and token["user"] == "ci-bot"
    assert status(sam.post("/api/v1/staff/robots/nobody/tokens"), 404)
    assert status(sam.patch("/api/v1/staff/users/ci-bot", json={"disabled": True}), 200)["disabled"]
    assert status(sam.patch("/api/v1/staff/users/ci-bot", json={"disabled": "yes"}), 400)
    events = status(sam.get("/api/v1/staff/audit", params={"kind": "admin"}), 200)["items"]
    assert events[0]["action"] == "staff.disable-user" and events[0]["user"] == "sam"


def deletions(anon, alice, raw: str, sif: str) -> None:
    public_refusal = status(anon.delete(f"{IMAGES}/{raw}"), 401)
    assert status(alice.patch("/api/v1/collections/lab", json={"private": True}), 200)["private"] is True
    assert status(anon.get("/api/v1/collections/lab"), 404)
    assert status(anon.delete(f"{IMAGES}/{raw}"), 401) == public_refusal
    assert status(alice.delete(f"{IMAGES}/{raw}"), 204) is None
    assert status(alice.delete("/api/v1/collections/lab/containers/tool"), 409)
    assert status(alice.delete("/api/v1/collections/lab"), 409)
    assert status(alice.put(f"{TAGS}/stable", json={"digest": sif, "frozen": False}), 200)["frozen"] is False
    assert status(alice.delete(f"{IMAGES}/v1"), 204) is None
    assert status(alice.delete("/api/v1/collections/lab/containers/tool"), 204) is None
    assert status(alice.delete("/api/v1/collections/lab"), 204) is None
    assert status(alice.delete("/api/v1/collections/lab"), 404)


class AssetLinks(HTMLParser):
    """The URLs a page loads: script sources and stylesheets."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.urls.append(values["src"])
        if tag == "link" and values.get("rel") == "stylesheet" and values.get("href"):
            self.urls.append(values["href"])


def test_swagger_ui_is_served_by_the_registry_itself(registry):
    client = registry.client()
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    own_host = urlsplit(registry.url).netloc
    foreign = [u for u in re.findall(r"https?://[^\s\"'<>]+", page.text) if urlsplit(u).netloc != own_host]
    assert foreign == []
    links = AssetLinks()
    links.feed(page.text)
    kinds, scripts = set(), []
    for url in links.urls:
        absolute = urljoin(registry.url + "/api/docs", url)
        assert urlsplit(absolute).netloc == own_host, url
        asset = client.get(absolute)
        assert asset.status_code == 200, url
        kind = asset.headers["Content-Type"].split(";")[0]
        assert kind in ("application/javascript", "text/javascript", "text/css"), (url, kind)
        kinds.add(kind)
        scripts.append(asset.text)
    assert "text/css" in kinds and len(kinds) > 1
    assert any('"/api/openapi.json"' in text for text in scripts), "no script points Swagger UI at the document"


def test_fuzzing_finds_no_server_error(registry, sif_file):
    """Positive cases must also conform to the document; negative ones must only never fail the server."""
    token = registry.add_user("fuzzer")
    owner = registry.client(token)
    assert push(owner, sif_file, tags=("latest",)).status_code == 201
    schema = schemathesis.openapi.from_dict(SPEC)
    auth = {"Authorization": f"Bearer {token}"}
    keeps_its_token = schema.exclude(operation_id="revokeToken")
    keeps_the_image = keeps_its_token.exclude(operation_id_regex="^delete")
    existing = {"collection": "lab", "container": "tool", "ref": "latest", "tag": "latest"}
    on_the_image = keeps_the_image.as_strategy(headers=auth, path_parameters=existing)
    strategy = st.one_of(
        keeps_its_token.as_strategy(headers=auth).map(lambda case: (case, True)),
        on_the_image.map(lambda case: (case, True)),
        on_the_image.map(lambda case: (case, True)),
        schema.as_strategy().map(lambda case: (case, True)),
        keeps_its_token.as_strategy(GenerationMode.NEGATIVE, headers=auth).map(lambda case: (case, False)),
        schema.as_strategy(GenerationMode.NEGATIVE).map(lambda case: (case, False)),
    )
    conformance = [
        not_a_server_error,
        status_code_conformance,
        response_schema_conformance,
        content_type_conformance,
        response_headers_conformance,
    ]
    session = requests.Session()
    sent = []

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(generated=strategy)
    def fuzz(generated: tuple[Any, bool]) -> None:
        case, positive = generated
        response = case.call(base_url=registry.url, session=session)
        sent.append(response.status_code)
        case.validate_response(response, checks=conformance if positive else [not_a_server_error])

    try:
        fuzz()
    finally:
        session.close()
    assert len(sent) >= FUZZ_EXAMPLES / 2
    assert max(sent) < 500
