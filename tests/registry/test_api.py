"""Behaviour of the native JSON API under ``/api/v1``: collections, listings, privacy, permissions,
tokens, tags, containers, images, statistics and the handling of bad input (never a 500).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from sregistry_jupyter.models import rules
from sregistry_jupyter.registry.names import is_digest
from sregistry_jupyter.registry.orm import ApiToken, Collection, CollectionMember, Event, User
from sregistry_jupyter.registry.services import collections
from tests.registry.test_transfer import IMAGES, digest_of, push

API = "/api/v1"
SECRET_NAME = "secret"
MISSING_NAME = "nosuch"


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """The native error envelope: JSON with a machine code and a human message."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["message"]
    if code is not None:
        assert body["code"] == code
    return body


def create(client: httpx.Client, name: str, **fields) -> httpx.Response:
    return client.post(f"{API}/collections", json={"name": name, **fields})


def names_in(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def raw_request(
    registry, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Send ``path`` exactly as written (httpx would normalise dot segments) and read the reply."""
    parts = urlsplit(registry.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.msg, response.read()
    finally:
        connection.close()


def add_member(registry, collection: str, user: str, role: str) -> None:
    with registry.session() as session:
        collection_id = session.scalar(select(Collection.id).where(Collection.name == collection))
        user_id = session.scalar(select(User.id).where(User.name == user))
        session.add(CollectionMember(collection_id=collection_id, user_id=user_id, role=role))
        session.commit()


def test_collection_lifecycle(registry):
    alice = registry.client(registry.add_user("alice"))
    created = create(alice, "lab", description="our tools")
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"{API}/collections/lab"
    body = created.json()
    assert (body["name"], body["description"], body["private"], body["owners"]) == (
        "lab",
        "our tools",
        False,
        ["alice"],
    )
    assert (body["containers"], body["images"], body["size"]) == (0, 0, 0)
    assert_error(create(alice, "lab"), 409, "CONFLICT")
    assert_error(create(registry.client(), "other"), 401, "UNAUTHORIZED")
    assert_error(create(alice, "Bad Name"), 400, "INVALID")
    assert_error(alice.post(f"{API}/collections", json={"description": "no name"}), 400, "INVALID")

    fetched = registry.client().get(f"{API}/collections/lab")
    assert fetched.status_code == 200
    assert fetched.json()["description"] == "our tools"
    assert fetched.json()["containers_list"] == []

    patched = alice.patch(f"{API}/collections/lab", json={"description": "new words", "private": True})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["description"], patched.json()["private"]) == ("new words", True)
    assert registry.client().get(f"{API}/collections/lab").status_code == 404
    assert alice.get(f"{API}/collections/lab").json()["private"] is True

    deleted = alice.delete(f"{API}/collections/lab")
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(alice.get(f"{API}/collections/lab"), 404, "NOT_FOUND")
    assert_error(alice.delete(f"{API}/collections/lab"), 404)
    assert create(alice, "lab").status_code == 201


@pytest.mark.parametrize("registry_settings", [{"max_page_size": 3}])
def test_pagination_and_bad_paging(registry):
    alice = registry.client(registry.add_user("alice"))
    for number in range(5):
        assert create(alice, f"c{number}").status_code == 201
    anonymous = registry.client()

    first = anonymous.get(f"{API}/collections", params={"per_page": 2}).json()
    assert (first["total"], first["pages"], first["page"], first["per_page"]) == (5, 3, 1, 2)
    assert [c["name"] for c in first["items"]] == ["c0", "c1"]
    last = anonymous.get(f"{API}/collections", params={"per_page": 2, "page": 3}).json()
    assert [c["name"] for c in last["items"]] == ["c4"]
    beyond = anonymous.get(f"{API}/collections", params={"per_page": 2, "page": 9}).json()
    assert beyond["items"] == [] and beyond["total"] == 5
    huge = anonymous.get(f"{API}/collections", params={"per_page": 10**12, "page": 10**12}).json()
    assert huge["per_page"] == 3 and huge["items"] == []
    clamped = anonymous.get(f"{API}/collections", params={"per_page": 1000}).json()
    assert clamped["per_page"] == 3 and len(clamped["items"]) == 3 and clamped["pages"] == 2

    for params, word in [
        ({"page": 0}, "page"),
        ({"page": -1}, "page"),
        ({"page": "abc"}, "page"),
        ({"page": "1.5"}, "page"),
        ({"per_page": "abc"}, "per_page"),
        ({"per_page": 0}, "per_page"),
        ({"per_page": ""}, "per_page"),
    ]:
        body = assert_error(anonymous.get(f"{API}/collections", params=params), 400, "INVALID")
        assert body["message"].startswith(word + " must be"), (params, body)


def test_the_documented_sorts_are_the_ones_the_registry_offers():
    assert set(rules.SORTS) == set(collections.SORTS) | set(collections.SUMMARY_SORTS)


def test_search_and_every_sort(registry):
    alice = registry.client(registry.add_user("alice"))
    for name, description in [
        ("charlie", "RNA-seq pipelines"),
        ("alpha", "100% reproducible"),
        ("bravo", ""),
        ("a_b", ""),
        ("axb", "plain"),
    ]:
        assert create(alice, name, description=description).status_code == 201
    assert push(alice, b"fiji image", collection="bravo", container="fiji").status_code == 201
    assert alice.patch(f"{API}/collections/alpha", json={"description": "100% reproducible!"}).status_code == 200

    def search(q: str) -> list[str]:
        return names_in(registry.client().get(f"{API}/collections", params={"q": q}))

    assert search("rna") == ["charlie"]
    assert search("RNA-SEQ") == ["charlie"]
    assert search("fiji") == ["bravo"]
    assert search("alph") == ["alpha"]
    assert search("%") == ["alpha"]
    assert search("a_b") == ["a_b"]
    assert search("_") == ["a_b"]
    assert search("\\") == []
    assert search("nothing-like-it") == []
    assert len(search("")) == 5
    counted = registry.client().get(f"{API}/collections", params={"q": "a", "per_page": 1}).json()
    assert counted["total"] == len(search("a")) and len(counted["items"]) == 1

    expected = {
        "name": ["a_b", "alpha", "axb", "bravo", "charlie"],
        "-name": ["charlie", "bravo", "axb", "alpha", "a_b"],
        "created": ["charlie", "alpha", "bravo", "a_b", "axb"],
        "-created": ["axb", "a_b", "bravo", "alpha", "charlie"],
        "updated": ["charlie", "a_b", "axb", "bravo", "alpha"],
        "-updated": ["alpha", "bravo", "axb", "a_b", "charlie"],
        # Ties (no bytes, no stars) keep the order of creation.
        "size": ["charlie", "alpha", "a_b", "axb", "bravo"],
        "-size": ["bravo", "charlie", "alpha", "a_b", "axb"],
        "-stars": ["charlie", "alpha", "bravo", "a_b", "axb"],
    }
    for sort, order in expected.items():
        assert names_in(registry.client().get(f"{API}/collections", params={"sort": sort})) == order, sort
    for sort in ("bytes", "name;drop", "", "NAME", "-size;"):
        body = assert_error(registry.client().get(f"{API}/collections", params={"sort": sort}), 400, "INVALID")
        assert "invalid sort" in body["message"]


def test_private_collections_are_hidden_from_lists_stats_and_search(registry):
    owner = registry.client(registry.add_user("owner"))
    stranger = registry.client(registry.add_user("stranger"))
    staff = registry.client(registry.add_user("staffer", staff=True))
    admin = registry.client(registry.add_user("root", admin=True))
    contributor = registry.client(registry.add_user("helper"))
    assert create(owner, "open").status_code == 201
    assert create(owner, SECRET_NAME, private=True, description="hidden gem").status_code == 201
    assert push(owner, b"public bytes", collection="open").status_code == 201
    assert push(owner, b"private bytes!", collection=SECRET_NAME, container="gem").status_code == 201
    add_member(registry, SECRET_NAME, "helper", "contributor")

    for client in (registry.client(), stranger):
        assert names_in(client.get(f"{API}/collections")) == ["open"]
        assert names_in(client.get(f"{API}/collections", params={"q": "gem"})) == []
        assert names_in(client.get(f"{API}/collections", params={"q": SECRET_NAME})) == []
        stats = client.get(f"{API}/stats").json()
        assert [c["name"] for c in stats["collections"]] == ["open"]
        assert stats["totals"]["size"] == len(b"public bytes")
        assert [(c["collection"], c["name"]) for c in stats["containers"]] == [("open", "tool")]
        assert sum(day["pushes"] for day in stats["activity"]) == 1
    for client in (owner, staff, admin, contributor):
        assert names_in(client.get(f"{API}/collections")) == ["open", SECRET_NAME]
        assert names_in(client.get(f"{API}/collections", params={"q": "gem"})) == [SECRET_NAME]
        stats = client.get(f"{API}/stats").json()
        assert [c["name"] for c in stats["collections"]] == ["open", SECRET_NAME]
        assert stats["totals"]["size"] == len(b"public bytes") + len(b"private bytes!")
        assert client.get(f"{IMAGES.format(c=SECRET_NAME, n='gem')}/latest/file").content == b"private bytes!"


def test_invisible_things_answer_exactly_like_missing_ones(registry):
    owner = registry.client(registry.add_user("owner"))
    stranger = registry.client(registry.add_user("stranger"))
    data = b"private image"
    assert create(owner, SECRET_NAME, private=True).status_code == 201
    assert push(owner, data, collection=SECRET_NAME, container="tool", tags=("v1",)).status_code == 201
    assert len(SECRET_NAME) == len(MISSING_NAME)
    digest = digest_of(data)
    container = f"{API}/collections/{{}}/containers/tool"
    requests = [
        ("GET", f"{API}/collections/{{}}"),
        ("GET", f"{API}/collections/{{}}/containers"),
        ("GET", container),
        ("GET", f"{container}/images"),
        ("GET", f"{container}/images/v1"),
        ("GET", f"{container}/images/{digest}"),
        ("GET", f"{container}/images/v1/file"),
        ("GET", f"{container}/images/{digest}/file"),
        ("HEAD", f"{container}/images/v1/file"),
        ("GET", f"{container}/tags"),
        ("PATCH", f"{API}/collections/{{}}"),
        ("DELETE", f"{API}/collections/{{}}"),
        ("DELETE", container),
        ("DELETE", f"{container}/images/v1"),
        ("DELETE", f"{container}/tags/v1"),
        ("PUT", f"{container}/tags/v2"),
    ]
    for client in (registry.client(), stranger):
        for method, template in requests:
            body = {"digest": digest} if method == "PUT" else {"description": "x"} if method == "PATCH" else None
            hidden = client.request(method, template.format(SECRET_NAME), json=body)
            missing = client.request(method, template.format(MISSING_NAME), json=body)
            assert hidden.status_code in (401, 404), (method, template, hidden.text)
            assert hidden.status_code == missing.status_code, (method, template)
            assert hidden.content.replace(SECRET_NAME.encode(), MISSING_NAME.encode()) == missing.content
            assert hidden.headers.get("WWW-Authenticate") == missing.headers.get("WWW-Authenticate")
    assert owner.get(f"{container.format(SECRET_NAME)}/images/v1/file").content == data


def test_only_owners_change_a_collection(registry):
    alice = registry.client(registry.add_user("alice"))
    mallory = registry.client(registry.add_user("mallory"))
    helper = registry.client(registry.add_user("helper"))
    data = b"alice's image"
    assert push(alice, data, tags=("v1",)).status_code == 201
    add_member(registry, "lab", "helper", "contributor")
    tool = f"{API}/collections/lab/containers/tool"
    for client, push_refusal in ((mallory, (409, "CONFLICT")), (helper, (403, "DENIED"))):
        assert_error(push(client, b"mallory's bytes", tags=("v1",)), *push_refusal)
        assert_error(push(client, b"mallory's bytes", container="new"), *push_refusal)
        assert_error(client.patch(f"{API}/collections/lab", json={"description": "owned"}), 403, "DENIED")
        assert_error(client.patch(f"{API}/collections/lab", json={"private": True}), 403, "DENIED")
        assert_error(client.delete(f"{API}/collections/lab"), 403, "DENIED")
        assert_error(client.delete(tool), 403, "DENIED")
        assert_error(client.delete(f"{tool}/images/v1"), 403, "DENIED")
        assert_error(client.delete(f"{tool}/tags/v1"), 403, "DENIED")
        assert_error(client.put(f"{tool}/tags/evil", json={"digest": digest_of(data)}), 403, "DENIED")
        assert client.get(f"{tool}/images/v1/file").content == data
    collection = alice.get(f"{API}/collections/lab").json()
    assert (collection["description"], collection["private"], collection["images"]) == ("", False, 1)
    assert [t["name"] for t in alice.get(f"{tool}/tags").json()["items"]] == ["v1"]
    assert [c["name"] for c in collection["containers_list"]] == ["tool"]


def test_token_scopes_cap_what_an_owner_may_do(registry):
    registry.add_user("alice")
    read = registry.client(registry.add_user("alice", scope="read"))
    write = registry.client(registry.add_user("alice", scope="write"))
    assert push(write, b"first", tags=("v1",)).status_code == 201
    assert_error(push(read, b"second"), 403, "DENIED")
    assert_error(push(read, b"second", collection="fresh"), 403, "DENIED")
    assert_error(create(read, "fresh"), 403, "DENIED")
    assert_error(read.delete(f"{API}/collections/lab/containers/tool/images/v1"), 403, "DENIED")
    assert_error(read.put(f"{API}/collections/lab/containers/tool/tags/x", json={"digest": digest_of(b"first")}), 403)
    assert read.get(f"{API}/collections/lab/containers/tool/images/v1/file").content == b"first"
    assert create(write, "fresh").status_code == 201
    assert_error(write.patch(f"{API}/collections/lab", json={"private": True}), 403, "DENIED")
    assert_error(write.delete(f"{API}/collections/lab"), 403, "DENIED")
    assert write.patch(f"{API}/collections/lab", json={"description": "ok"}).status_code == 200
    assert names_in(registry.client().get(f"{API}/collections")) == ["fresh", "lab"]


def test_expired_revoked_and_garbage_tokens_are_refused(registry):
    expired = registry.add_user("alice", expires_in_days=30)
    live = registry.add_user("alice")
    with registry.session() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == select(User.id).where(User.name == "alice").scalar_subquery())
            .where(ApiToken.expires_at.is_not(None))
            .values(expires_at=dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=1))
        )
        session.commit()
    for token in (expired, "garbage", "sreg_abcdefghijkl_" + "A" * 43, live[:-1] + ("A" if live[-1] != "A" else "B")):
        response = registry.client(token).get(f"{API}/user")
        assert_error(response, 401, "UNAUTHORIZED")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert_error(registry.client(token).get(f"{API}/collections"), 401)

    alice = registry.client(live)
    made = alice.post(f"{API}/user/tokens", json={"name": "laptop", "scope": "write"}).json()
    laptop = registry.client(made["token"])
    assert laptop.get(f"{API}/user").json()["name"] == "alice"
    assert alice.delete(f"{API}/user/tokens/{made['id']}").status_code == 204
    assert_error(laptop.get(f"{API}/user"), 401, "UNAUTHORIZED")
    assert_error(push(laptop, b"after revocation"), 401)
    listed = {t["id"]: t for t in alice.get(f"{API}/user/tokens").json()["items"]}
    assert listed[made["id"]]["revoked"] is not None


def test_authorization_header_forms(registry):
    token = registry.add_user("alice")
    for header in (f"Bearer {token}", f"BEARER {token}", f"bearer {token}", f"Token {token}", f" Bearer   {token} "):
        status, _, body = raw_request(registry, "GET", f"{API}/user", {"Authorization": header})
        assert status == 200, header
        assert json.loads(body)["name"] == "alice"
    for header in (f"Basic {token}", "Bearer", "", token, f"Bearer {token} extra"):
        status, headers, body = raw_request(registry, "GET", f"{API}/user", {"Authorization": header})
        assert status == 401, header
        assert json.loads(body)["code"] == "UNAUTHORIZED"
        assert headers["WWW-Authenticate"].startswith("Bearer")


def test_tokens_api(registry):
    alice = registry.client(registry.add_user("alice"))
    bob_token = registry.add_user("bob")
    bob = registry.client(bob_token)
    made = alice.post(f"{API}/user/tokens", json={"name": "ci", "scope": "read", "expires_in_days": 7})
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["name"], body["scope"], body["revoked"]) == ("ci", "read", None)
    assert body["token"].startswith("sreg_")
    expires = dt.datetime.fromisoformat(body["expires"].rstrip("Z"))
    assert dt.timedelta(days=6.9) < expires - dt.datetime.now(dt.UTC).replace(tzinfo=None) <= dt.timedelta(days=7)
    assert registry.client(body["token"]).get(f"{API}/user").json()["name"] == "alice"

    listing = alice.get(f"{API}/user/tokens")
    assert listing.status_code == 200
    assert [t["name"] for t in listing.json()["items"]][-1] == "ci"
    assert body["token"] not in listing.text
    assert all("token" not in t and "hashed" not in t and "salt" not in t for t in listing.json()["items"])
    assert "ci" not in bob.get(f"{API}/user/tokens").text

    default = alice.post(f"{API}/user/tokens", json={}).json()
    assert default["scope"] == "read" and default["expires"] is None

    for scope in ("read", "write"):
        weak = registry.client(registry.add_user("alice", scope=scope))
        response = weak.post(f"{API}/user/tokens", json={"scope": "admin"})
        message = assert_error(response, 403, "DENIED")["message"]
        assert message.startswith(f"this token has scope {scope!r};") and "needs an 'admin' token" in message
    assert_error(registry.client().post(f"{API}/user/tokens", json={}), 401)
    assert_error(registry.client().get(f"{API}/user/tokens"), 401)

    for bad in [
        {"scope": "root"},
        {"scope": 3},
        {"expires_in_days": 0},
        {"expires_in_days": -1},
        {"expires_in_days": 100_000},
        {"expires_in_days": "7"},
        {"expires_in_days": True},
        {"name": ""},
        {"name": "   "},
        {"name": "n" * 101},
        {"name": 5},
    ]:
        assert_error(alice.post(f"{API}/user/tokens", json=bad), 400, "INVALID")
    assert_error(alice.post(f"{API}/user/tokens", content=b'{"expires_in_days": NaN}'), 400)
    assert_error(alice.post(f"{API}/user/tokens", content=b'{"expires_in_days": Infinity}'), 400)

    bobs = bob.get(f"{API}/user/tokens").json()["items"][0]["id"]
    assert_error(alice.delete(f"{API}/user/tokens/{bobs}"), 404, "NOT_FOUND")
    assert_error(alice.delete(f"{API}/user/tokens/987654"), 404, "NOT_FOUND")
    assert_error(alice.delete(f"{API}/user/tokens/99999999999999999999999"), 400, "INVALID")
    assert_error(alice.delete(f"{API}/user/tokens/{'9' * 5000}"), 400, "INVALID")
    assert_error(registry.client().delete(f"{API}/user/tokens/{bobs}"), 401)
    assert bob.get(f"{API}/user").status_code == 200


def test_user_endpoint(registry):
    assert_error(registry.client().get(f"{API}/user"), 401, "UNAUTHORIZED")
    for name, flags in [("alice", {}), ("root", {"admin": True}), ("staffer", {"staff": True})]:
        user = registry.client(registry.add_user(name, **flags)).get(f"{API}/user").json()
        assert user["name"] == name
        assert (user["admin"], user["staff"], user["robot"]) == (name == "root", name == "staffer", False)
        assert user["created"].endswith("Z")


def test_tags_and_frozen_tags(registry):
    alice = registry.client(registry.add_user("alice"))
    one, two = b"image one", b"image two"
    assert push(alice, one, tags=("v1",)).status_code == 201
    assert push(alice, two, tags=("v2",)).status_code == 201
    tool = f"{API}/collections/lab/containers/tool"

    tagged = alice.put(f"{tool}/tags/stable", json={"digest": digest_of(one)})
    assert tagged.status_code == 200, tagged.text
    assert (tagged.json()["name"], tagged.json()["digest"], tagged.json()["frozen"]) == (
        "stable",
        digest_of(one),
        False,
    )
    tags = alice.get(f"{tool}/tags").json()["items"]
    assert {t["name"]: t["digest"] for t in tags} == {
        "stable": digest_of(one),
        "v1": digest_of(one),
        "v2": digest_of(two),
    }
    moved = alice.put(f"{tool}/tags/stable", json={"digest": digest_of(two)})
    assert moved.json()["digest"] == digest_of(two)
    assert alice.get(f"{tool}/images/stable/file").content == two
    assert_error(alice.put(f"{tool}/tags/x", json={"digest": digest_of(b"never pushed")}), 404, "NOT_FOUND")
    assert_error(alice.put(f"{tool}/tags/x", json={}), 400, "INVALID")

    assert alice.delete(f"{tool}/tags/v1").status_code == 204
    assert_error(alice.get(f"{tool}/images/v1"), 404)
    assert_error(alice.delete(f"{tool}/tags/v1"), 404)
    assert alice.get(f"{tool}/images/{digest_of(one)}/file").content == one

    frozen = alice.put(f"{tool}/tags/release", json={"digest": digest_of(one), "frozen": True})
    assert frozen.status_code == 200 and frozen.json()["frozen"] is True
    assert_error(alice.put(f"{tool}/tags/release", json={"digest": digest_of(two)}), 409, "CONFLICT")
    assert_error(alice.delete(f"{tool}/tags/release"), 409, "CONFLICT")
    assert_error(alice.delete(f"{tool}/images/release"), 409, "CONFLICT")
    assert_error(alice.delete(f"{tool}/images/{digest_of(one)}"), 409, "CONFLICT")
    assert_error(alice.delete(tool), 409, "CONFLICT")
    assert_error(alice.delete(f"{API}/collections/lab"), 409, "CONFLICT")
    assert_error(push(alice, b"replacement", tags=("release",)), 409, "CONFLICT")

    status, headers, body = raw_request(
        registry,
        "POST",
        f"{IMAGES.format(c='lab', n='tool')}?digest={digest_of(b'x')}&tag=release",
        {"Authorization": alice.headers["Authorization"], "Content-Length": str(10**9)},
    )
    assert status == 409 and json.loads(body)["code"] == "CONFLICT"
    assert headers["Connection"] == "close"
    assert alice.get(f"{tool}/images/release/file").content == one

    thawed = alice.put(f"{tool}/tags/release", json={"digest": digest_of(one), "frozen": False})
    assert thawed.json()["frozen"] is False
    assert alice.delete(f"{tool}/tags/release").status_code == 204
    assert alice.delete(f"{API}/collections/lab").status_code == 204


def test_containers(registry):
    alice = registry.client(registry.add_user("alice"))
    assert push(alice, b"a1", container="beta", tags=("v1", "latest")).status_code == 201
    assert push(alice, b"a2", container="beta", tags=("v2",)).status_code == 201
    assert push(alice, b"b1", container="alpha").status_code == 201
    listing = alice.get(f"{API}/collections/lab/containers").json()["items"]
    assert [c["name"] for c in listing] == ["alpha", "beta"]
    beta = alice.get(f"{API}/collections/lab/containers/beta").json()
    assert beta["collection"] == "lab"
    assert [t["name"] for t in beta["tags"]] == ["latest", "v1", "v2"]
    assert [i["digest"] for i in beta["images"]] == [digest_of(b"a2"), digest_of(b"a1")]
    assert beta["images"][1]["tags"] == ["latest", "v1"]
    assert_error(alice.get(f"{API}/collections/lab/containers/gamma"), 404, "NOT_FOUND")
    assert alice.delete(f"{API}/collections/lab/containers/beta").status_code == 204
    assert_error(alice.get(f"{API}/collections/lab/containers/beta"), 404)
    assert_error(alice.get(f"{IMAGES.format(c='lab', n='beta')}/v1/file"), 404)
    assert [c["name"] for c in alice.get(f"{API}/collections/lab/containers").json()["items"]] == ["alpha"]
    assert alice.get(f"{API}/collections/lab").json()["images"] == 1


def test_images_by_tag_digest_and_architecture(registry):
    alice = registry.client(registry.add_user("alice"))
    amd, arm = b"amd64 build", b"arm64 build!"
    assert push(alice, amd, tags=("latest",), arch="amd64", description="x86 build").status_code == 201
    assert push(alice, arm, tags=("latest",), arch="arm64").status_code == 201
    images = IMAGES.format(c="lab", n="tool")

    by_tag = alice.get(f"{images}/latest")
    assert by_tag.status_code == 200
    meta = by_tag.json()
    assert (meta["digest"], meta["arch"], meta["size"], meta["description"]) == (
        digest_of(amd),
        "amd64",
        len(amd),
        "x86 build",
    )
    assert (meta["collection"], meta["container"], meta["tags"]) == ("lab", "tool", ["latest"])
    assert alice.get(f"{images}/latest", params={"arch": "arm64"}).json()["digest"] == digest_of(arm)
    assert alice.get(f"{images}/latest/file", params={"arch": "arm64"}).content == arm
    assert alice.get(f"{images}/{digest_of(arm)}").json()["arch"] == "arm64"
    assert_error(alice.get(f"{images}/{digest_of(arm)}", params={"arch": "amd64"}), 404)
    assert_error(alice.get(f"{images}/latest", params={"arch": "ppc64le"}), 404, "NOT_FOUND")
    assert_error(alice.get(f"{images}/latest", params={"arch": "ARM/v7"}), 400, "INVALID")
    assert_error(alice.get(f"{images}/nope"), 404, "NOT_FOUND")
    assert_error(alice.get(f"{images}/{digest_of(b'unknown')}"), 404, "NOT_FOUND")
    assert sorted(i["arch"] for i in alice.get(images).json()["items"]) == ["amd64", "arm64"]

    assert alice.delete(f"{images}/latest", params={"arch": "arm64"}).status_code == 204
    assert_error(alice.get(f"{images}/{digest_of(arm)}"), 404)
    assert alice.get(f"{images}/latest").json()["digest"] == digest_of(amd)
    assert alice.delete(f"{images}/{digest_of(amd)}").status_code == 204
    assert_error(alice.get(f"{images}/latest"), 404)
    assert alice.get(images).json()["items"] == []


def test_statistics(registry):
    alice = registry.client(registry.add_user("alice"))
    anonymous = registry.client()
    first, second, third = os.urandom(1000), os.urandom(2500), os.urandom(400)
    assert push(alice, first, collection="lab", container="tool", tags=("v1", "latest")).status_code == 201
    assert push(alice, second, collection="lab", container="tool", tags=("v2",)).status_code == 201
    assert push(alice, third, collection="other", container="thing").status_code == 201
    assert create(alice, "empty").status_code == 201
    for _ in range(3):
        assert anonymous.get(f"{IMAGES.format(c='lab', n='tool')}/v1/file").status_code == 200
    assert (
        anonymous.get(f"{IMAGES.format(c='lab', n='tool')}/v1/file", headers={"Range": "bytes=10-"}).status_code == 206
    )

    registry.flush()
    stats = anonymous.get(f"{API}/stats", params={"days": 7}).json()
    assert stats["totals"] == {"collections": 3, "containers": 2, "images": 3, "tags": 4, "size": 3900}
    assert stats["collections"] == [
        {"name": "empty", "private": False, "containers": 0, "images": 0, "size": 0},
        {"name": "lab", "private": False, "containers": 1, "images": 2, "size": 3500},
        {"name": "other", "private": False, "containers": 1, "images": 1, "size": 400},
    ]
    assert stats["containers"] == [
        {"collection": "lab", "name": "tool", "images": 2, "size": 3500, "downloads": 3},
        {"collection": "other", "name": "thing", "images": 1, "size": 400, "downloads": 0},
    ]
    activity = stats["activity"]
    today = dt.datetime.now(dt.UTC).date()
    assert [day["date"] for day in activity] == [(today - dt.timedelta(days=6 - i)).isoformat() for i in range(7)]
    assert (activity[-1]["pushes"], activity[-1]["pulls"]) == (3, 3)
    assert all(day["pushes"] == day["pulls"] == 0 for day in activity[:-1])

    assert len(anonymous.get(f"{API}/stats").json()["activity"]) == 30
    assert len(anonymous.get(f"{API}/stats", params={"days": 100_000}).json()["activity"]) == 366
    assert len(anonymous.get(f"{API}/stats", params={"days": 1}).json()["activity"]) == 1
    for days in ("0", "-3", "abc", "2.5"):
        body = assert_error(anonymous.get(f"{API}/stats", params={"days": days}), 400, "INVALID")
        assert body["message"].startswith("days must be")


INVALID_NAME_PATHS = [
    f"{API}/collections/..",
    f"{API}/collections/%2e%2e",
    f"{API}/collections/%2E%2E/containers",
    f"{API}/collections/a%2Fb",
    f"{API}/collections/..%2f..%2fetc",
    f"{API}/collections/..%5c..%5cetc",
    f"{API}/collections/%2Fetc%2Fpasswd",
    f"{API}/collections/Lab",
    f"{API}/collections/l%D0%B0b",
    f"{API}/collections/%EF%BD%8C%EF%BD%81%EF%BD%82",
    f"{API}/collections/lab%E2%80%8B",
    f"{API}/collections/{'a' * 200}",
    f"{API}/collections/a%00b",
    f"{API}/collections/%FF%FE",
    f"{API}/collections/lab%20",
    f"{API}/collections/lab/containers/..",
    f"{API}/collections/lab/containers/%2e%2e/images",
    f"{API}/collections/lab/containers/TOOL/images/latest",
    f"{API}/collections/lab/containers/tool/images/..%2f..%2fx/file",
    f"{API}/collections/lab/containers/tool/images/sha256:..%2f..%2fx",
    f"{API}/collections/lab/containers/tool/images/%00/file",
    f"{API}/collections/lab/containers/tool/images/..",
]
UNROUTABLE_PATHS = [
    f"{API}/collections/lab/../../etc/passwd",
    f"{API}/collections/a/../../b",
    "/../../etc/passwd",
    f"{API}/collections/lab/containers/tool/images/latest/file/../../../../../../etc/passwd",
]


def test_hostile_paths_get_json_errors_never_500(registry):
    token = registry.add_user("alice")
    alice = registry.client(token)
    assert push(alice, b"real", tags=("latest",)).status_code == 201
    headers = {"Authorization": f"Bearer {token}"}
    cases = [(path, "GET", (400,)) for path in INVALID_NAME_PATHS]
    cases += [(path, "DELETE", (400, 405)) for path in INVALID_NAME_PATHS]
    cases += [(path, method, (404,)) for path in UNROUTABLE_PATHS for method in ("GET", "DELETE")]
    for path, method, expected in cases:
        status, reply_headers, body = raw_request(registry, method, path, headers)
        assert status in expected, (method, path, status, body)
        assert reply_headers["Content-Type"].startswith("application/json"), (method, path)
        assert set(json.loads(body)) == {"code", "message"}, (method, path)
    digest = digest_of(b"x")
    for collection, container in [("..", "tool"), ("lab", "%2e%2e"), ("a%2Fb", "tool"), ("lab", "A"), ("a%00", "x")]:
        status, _, body = raw_request(
            registry,
            "POST",
            f"{IMAGES.format(c=collection, n=container)}?digest={digest}",
            {**headers, "Content-Length": "1"},
            b"x",
        )
        assert status == 400 and json.loads(body)["code"] == "INVALID", (collection, container, body)
    assert names_in(alice.get(f"{API}/collections")) == ["lab"]
    assert alice.get(f"{IMAGES.format(c='lab', n='tool')}/latest/file").content == b"real"
    assert sorted(p.name for p in registry.data_dir.iterdir()) == ["secret_key", "storage"]


def test_bad_tags_and_digests_are_refused(registry):
    alice = registry.client(registry.add_user("alice"))
    data = b"tag me"
    assert push(alice, data, tags=("ok",)).status_code == 201
    tool = f"{API}/collections/lab/containers/tool"
    bad_tags = ["t" * 129, ".hidden", "-flag", "a:b", "sha256." + "0" * 64, "sha256.abc", "white space"]
    for tag in bad_tags:
        body = assert_error(alice.put(f"{tool}/tags/{tag}", json={"digest": digest_of(data)}), 400, "INVALID")
        assert "invalid tag" in body["message"]
        assert_error(push(alice, b"other", tags=(tag,)), 400, "INVALID")
        assert_error(alice.get(f"{tool}/images/{tag}"), 404 if is_digest(tag) else 400)
    bad_digests = ["sha256:" + "0" * 64, "sha256:xyz", "sha256." + "A" * 64, "sha256." + "0" * 63, "md5." + "0" * 32]
    for digest in bad_digests:
        assert_error(push(alice, b"other", digest=digest), 400, "INVALID")
        body = assert_error(alice.put(f"{tool}/tags/new", json={"digest": digest}), 400, "INVALID")
        assert "invalid digest" in body["message"]
    assert_error(alice.post(IMAGES.format(c="lab", n="tool"), content=b"no digest"), 400, "INVALID")
    assert_error(alice.put(f"{tool}/tags/new", json={"digest": ""}), 400, "INVALID")
    assert_error(alice.put(f"{tool}/tags/new", json={"digest": digest_of(data), "arch": "ARM"}), 400, "INVALID")
    assert [t["name"] for t in alice.get(f"{tool}/tags").json()["items"]] == ["ok"]


def test_bad_json_bodies_are_400(registry):
    alice = registry.client(registry.add_user("alice"))
    assert create(alice, "lab").status_code == 201
    posts = [
        b"{",
        b'{"name": "x",}',
        b"[1, 2]",
        b'"lab"',
        b"null",
        b'{"name": "\xff\xfe"}',
        b"\xef\xbb\xbf\xff",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"name": 5}',
        b'{"name": ["lab2"]}',
        b'{"name": "lab2", "private": "yes"}',
        b'{"name": "lab2", "private": 1}',
        b'{"name": "lab2", "description": ["x"]}',
        b'{"name": "lab2", "description": "' + b"d" * 10_001 + b'"}',
        b'{"name": "lab2", "description": "nul \\u0000 inside"}',
        b'{"name": "lab2", "description": "lone \\ud800 surrogate"}',
    ]
    for body in posts:
        assert_error(alice.post(f"{API}/collections", content=body), 400, "INVALID")
    for body in (b"{", b'{"private": "yes"}', b'{"description": 3}', b"[]", b'{"description": "\\u0000"}'):
        assert_error(alice.patch(f"{API}/collections/lab", content=body), 400, "INVALID")
    assert_error(alice.put(f"{API}/collections/lab/containers/tool/tags/x", content=b'{"digest": 1}'), 400)
    assert_error(
        alice.put(f"{API}/collections/lab/containers/tool/tags/x", content=b'{"digest": "sha256.x", "frozen": "yes"}'),
        400,
    )
    assert_error(alice.post(f"{API}/user/tokens", content=b"not json"), 400, "INVALID")
    assert names_in(alice.get(f"{API}/collections")) == ["lab"]
    assert alice.get(f"{API}/collections/lab").json()["private"] is False


@pytest.mark.parametrize("registry_settings", [{"max_json_body": 2000}])
def test_json_bodies_above_the_limit_are_413(registry):
    alice = registry.client(registry.add_user("alice"))
    assert create(alice, "lab", description="d" * 1500).status_code == 201
    assert_error(create(alice, "big", description="d" * 3000), 413, "TOO_LARGE")
    assert_error(alice.patch(f"{API}/collections/lab", json={"description": "d" * 3000}), 413, "TOO_LARGE")
    status, _, body = raw_request(
        registry, "POST", f"{API}/collections", {**alice.headers, "Content-Length": "2x"}, b"{}"
    )
    assert status == 400 and json.loads(body)["code"] == "INVALID"
    status, _, body = raw_request(
        registry,
        "POST",
        f"{API}/collections",
        {"Authorization": alice.headers["Authorization"], "Content-Length": str(10**9)},
    )
    assert status == 413 and json.loads(body)["code"] == "TOO_LARGE"
    assert names_in(alice.get(f"{API}/collections")) == ["lab"]
    assert alice.get(f"{API}/collections/lab").json()["description"] == "d" * 1500


def test_unknown_endpoints_and_methods(registry):
    anonymous = registry.client()
    for path in (
        f"{API}/nope",
        f"{API}/collections/lab/containers/tool/nope",
        "/nope",
        f"{API}",
        "/api/v2/collections",
    ):
        assert_error(anonymous.get(path), 404, "NOT_FOUND")
    for method, path in (("POST", f"{API}/stats"), ("DELETE", f"{API}/user"), ("PUT", f"{API}/collections")):
        response = anonymous.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["Content-Type"].startswith("application/json")
        assert set(response.json()) == {"code", "message"}


def test_uploads_without_a_length_need_a_declared_size(registry):
    alice = registry.client(registry.add_user("alice"))
    data = os.urandom(300_000)

    def chunks():
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    url = IMAGES.format(c="lab", n="tool")
    refused = alice.post(url, params={"digest": digest_of(data), "tag": "latest"}, content=chunks())
    assert_error(refused, 411, "LENGTH_REQUIRED")
    assert_error(alice.get(f"{API}/collections/lab"), 404)
    accepted = alice.post(url, params={"digest": digest_of(data), "tag": "latest", "size": len(data)}, content=chunks())
    assert accepted.status_code == 201, accepted.text
    assert alice.get(f"{url}/latest/file").content == data


def test_home_page_lists_public_collections_only(registry):
    alice = registry.client(registry.add_user("alice"))
    assert create(alice, "sunlit-lab").status_code == 201
    assert create(alice, "hidden-lab", private=True).status_code == 201
    assert push(alice, b"bytes", collection="pushed-lab").status_code == 201
    for client in (registry.client(), alice):
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert "Test Registry" in page.text
        assert "sunlit-lab" in page.text and "pushed-lab" in page.text
        assert "hidden-lab" not in page.text


def test_audit_trail_records_pushes_pulls_tags_and_deletes(registry):
    alice = registry.client(registry.add_user("alice"))
    data = b"audited image"
    digest = digest_of(data)
    images = IMAGES.format(c="lab", n="tool")
    assert push(alice, data, tags=("v1",)).status_code == 201
    assert registry.client().get(f"{images}/v1/file").content == data
    assert alice.put(f"{API}/collections/lab/containers/tool/tags/stable", json={"digest": digest}).status_code == 200
    assert alice.delete(f"{API}/collections/lab/containers/tool/tags/stable").status_code == 204
    assert alice.delete(f"{images}/{digest}").status_code == 204
    registry.flush()
    with registry.session() as session:
        events = session.scalars(
            select(Event)
            .where(Event.action.in_(("push", "pull", "tag", "untag", "delete")))
            .order_by(Event.at, Event.id)
        ).all()
        trail = [(e.action, e.username, e.collection, e.container, e.digest) for e in events]
    assert trail == [
        ("push", "alice", "lab", "tool", digest),
        ("pull", None, "lab", "tool", digest),
        ("tag", "alice", "lab", "tool", digest),
        ("untag", "alice", "lab", "tool", digest),
        ("delete", "alice", "lab", "tool", digest),
    ]
