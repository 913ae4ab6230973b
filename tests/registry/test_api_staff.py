"""The staff's work through the native API: listing accounts, disabling and enabling them, making staff,
robot accounts and their tokens, and the audit trail, each refused to whoever ``decide_staff`` refuses.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select, update

from sregistry_jupyter.registry.orm import User
from tests.conftest import LiveRegistry
from tests.registry.test_api import assert_error
from tests.registry.test_request_core import SlowHub, hub_registry

STAFF = "/api/v1/staff"


def ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def people(registry: LiveRegistry) -> dict[str, httpx.Client]:
    """An administrator, a staff member and a plain user, each with an admin-scoped token."""
    return {
        "root": registry.client(registry.add_user("root", admin=True)),
        "sam": registry.client(registry.add_user("sam", staff=True)),
        "alice": registry.client(registry.add_user("alice")),
    }


@pytest.mark.parametrize("who", ["root", "sam"])
def test_staff_and_admins_list_accounts_a_page_at_a_time(registry, people, who):
    client = people[who]
    for name in ("u1", "u2", "u3"):
        registry.add_user(name)
    first = ok(client.get(f"{STAFF}/users", params={"per_page": 2}))
    assert [a["name"] for a in first["items"]] == ["alice", "root"]
    assert (first["total"], first["pages"], first["page"]) == (6, 3, 1)
    last = ok(client.get(f"{STAFF}/users", params={"per_page": 2, "page": 3}))
    assert [a["name"] for a in last["items"]] == ["u2", "u3"]
    found = ok(client.get(f"{STAFF}/users", params={"q": "sa"}))["items"]
    assert [(a["name"], a["kind"], a["staff"], a["tokens"], a["disabled"]) for a in found] == [
        ("sam", "staff", True, 1, None)
    ]


def test_a_plain_user_and_a_visitor_are_refused_every_staff_endpoint(registry, people):
    alice, anon = people["alice"], registry.client()
    calls = [
        ("GET", f"{STAFF}/users", None),
        ("GET", f"{STAFF}/audit", None),
        ("GET", f"{STAFF}/users/sam", None),
        ("PATCH", f"{STAFF}/users/sam", {"disabled": True}),
        ("POST", f"{STAFF}/robots", {"name": "bot"}),
        ("POST", f"{STAFF}/robots/bot/tokens", {"scope": "read"}),
    ]
    for method, path, body in calls:
        assert_error(alice.request(method, path, json=body), 403, "DENIED")
        assert_error(anon.request(method, path, json=body), 401)
    assert_error(alice.patch(f"{STAFF}/users/nobody", json={"disabled": True}), 404)
    with registry.session() as session:
        assert session.scalar(select(User.disabled_at).where(User.name == "sam")) is None
        assert session.scalar(select(User).where(User.name == "bot")) is None


def test_staff_disable_and_enable_an_account_and_its_tokens_stop_and_work_again(registry, people):
    sam = people["sam"]
    bob_token = registry.add_user("bob")
    bob = registry.client(bob_token)
    assert bob.get("/api/v1/user").status_code == 200
    disabled = ok(sam.patch(f"{STAFF}/users/bob", json={"disabled": True}))
    assert disabled["name"] == "bob" and disabled["disabled"] and disabled["tokens"] == 1
    assert bob.get("/api/v1/user").status_code == 401
    assert ok(sam.patch(f"{STAFF}/users/bob", json={"disabled": False}))["disabled"] is None
    assert bob.get("/api/v1/user").status_code == 200


def test_only_administrators_make_staff_and_nobody_changes_their_own_account(registry, people):
    root, sam = people["root"], people["sam"]
    assert_error(sam.patch(f"{STAFF}/users/alice", json={"staff": True}), 403, "DENIED")
    assert_error(sam.patch(f"{STAFF}/users/root", json={"disabled": True}), 403, "DENIED")
    assert_error(sam.patch(f"{STAFF}/users/sam", json={"disabled": True}), 403, "DENIED")
    assert_error(root.patch(f"{STAFF}/users/root", json={"disabled": True}), 403, "DENIED")
    made = ok(root.patch(f"{STAFF}/users/alice", json={"staff": True}))
    assert (made["staff"], made["kind"]) == (True, "staff")
    assert ok(people["alice"].get(f"{STAFF}/users"))["total"] == 3
    assert ok(root.patch(f"{STAFF}/users/alice", json={"staff": False}))["kind"] == "user"
    assert_error(people["alice"].get(f"{STAFF}/users"), 403)


def test_staff_make_a_robot_account_and_a_token_it_pulls_with(registry, people):
    sam = people["sam"]
    made = sam.post(f"{STAFF}/robots", json={"name": "ci-bot"})
    robot = ok(made, 201)
    assert (robot["name"], robot["robot"], robot["kind"], robot["tokens"]) == ("ci-bot", True, "robot", 0)
    assert made.headers["Location"] == f"{STAFF}/users/ci-bot"
    assert ok(sam.get(made.headers["Location"])) == robot
    assert_error(sam.post(f"{STAFF}/robots", json={"name": "ci-bot"}), 409, "CONFLICT")
    token = ok(sam.post(f"{STAFF}/robots/ci-bot/tokens", json={"scope": "read"}), 201)
    assert (token["user"], token["scope"]) == ("ci-bot", "read") and token["token"].startswith("sreg_")
    assert ok(registry.client(token["token"]).get("/api/v1/user"))["robot"] is True
    assert ok(sam.get(f"{STAFF}/users/ci-bot"))["tokens"] == 1
    assert_error(sam.post(f"{STAFF}/robots/alice/tokens", json={}), 400, "INVALID")
    assert_error(sam.post(f"{STAFF}/robots/nobody/tokens", json={}), 404)
    assert_error(sam.patch(f"{STAFF}/users/ci-bot", json={"staff": True}), 403)
    assert "robots are never staff" in people["root"].patch(f"{STAFF}/users/ci-bot", json={"staff": True}).text


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PATCH", "users/alice", {"disabled": "yes"}, "'disabled'"),
        ("PATCH", "users/alice", {"staff": 1}, "'staff'"),
        ("POST", "robots", {}, "'name' is required"),
        ("POST", "robots", {"name": 7}, "'name'"),
        ("POST", "robots/bot/tokens", {"scope": ["read"]}, "'scope'"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(people, method, path, body, field):
    refused = assert_error(people["root"].request(method, f"{STAFF}/{path}", json=body), 400, "INVALID")
    assert field in refused["message"]


def test_bad_names_and_queries_are_400s(people):
    root = people["root"]
    assert_error(root.post(f"{STAFF}/robots", json={"name": "Not A Name"}), 400, "INVALID")
    assert_error(root.patch(f"{STAFF}/users/BAD%20NAME", json={"disabled": True}), 400, "INVALID")
    assert_error(root.get(f"{STAFF}/users", params={"q": "x" * 65}), 400, "INVALID")
    assert_error(root.get(f"{STAFF}/users", params={"page": 0}), 400, "INVALID")
    assert_error(root.get(f"{STAFF}/audit", params={"kind": "everything"}), 400, "INVALID")
    ok(root.post(f"{STAFF}/robots", json={"name": "bot"}), 201)
    assert "scope" in assert_error(root.post(f"{STAFF}/robots/bot/tokens", json={"scope": "root"}), 400)["message"]


def test_the_audit_trail_filters_by_user_collection_and_kind_a_page_at_a_time(registry, people):
    root, sam, alice = people["root"], people["sam"], people["alice"]
    ok(alice.post("/api/v1/collections", json={"name": "lab"}), 201)
    ok(alice.post("/api/v1/collections", json={"name": "other"}), 201)
    ok(sam.post(f"{STAFF}/robots", json={"name": "bot"}), 201)
    ok(sam.patch(f"{STAFF}/users/alice", json={"disabled": True}))
    trail = ok(root.get(f"{STAFF}/audit"))
    assert [e["action"] for e in trail["items"][:2]] == ["staff.disable-user", "staff.create-robot"]
    assert trail["items"][0]["detail"] == {"user": "alice"} and trail["items"][0]["user"] == "sam"
    by_alice = ok(sam.get(f"{STAFF}/audit", params={"user": "alice"}))
    assert {e["user"] for e in by_alice["items"]} == {"alice"}
    assert {e["collection"] for e in by_alice["items"]} >= {"lab", "other"}
    in_lab = ok(sam.get(f"{STAFF}/audit", params={"collection": "lab"}))["items"]
    assert [(e["action"], e["collection"]) for e in in_lab] == [("collection.create", "lab")]
    admin = ok(sam.get(f"{STAFF}/audit", params={"kind": "admin", "per_page": 1}))
    assert (admin["total"], admin["pages"], [e["action"] for e in admin["items"]]) == (2, 2, ["staff.disable-user"])
    second = ok(sam.get(f"{STAFF}/audit", params={"kind": "admin", "per_page": 1, "page": 2}))
    assert [e["action"] for e in second["items"]] == ["staff.create-robot"]
    assert ok(sam.get(f"{STAFF}/audit", params={"kind": "pull"}))["total"] == 0


def test_a_token_without_the_admin_scope_is_refused_even_for_staff(registry):
    writer = registry.client(registry.add_user("sam", staff=True, scope="write"))
    refused = assert_error(writer.get(f"{STAFF}/users"), 403, "DENIED")
    assert "admin" in refused["message"]
    assert_error(writer.post(f"{STAFF}/robots", json={"name": "bot"}), 403)


@pytest.fixture
def hub() -> Iterator[SlowHub]:
    stand_in = SlowHub(0.0, ["access:services!service=sregistry"])
    stand_in.start()
    yield stand_in
    stand_in.stop()


def test_a_hub_token_never_qualifies_even_for_a_staff_member_with_admin_scope(db_url, tmp_path, hub):
    registry, stop = hub_registry(db_url, tmp_path, hub)
    try:
        registry.context.authenticator.token_scope = "admin"
        carol = registry.client()
        carol.headers["Authorization"] = "token hub-token-carol"
        assert ok(carol.get("/api/v1/user"))["name"] == "carol"
        with registry.session() as session:
            session.execute(update(User).where(User.name == "carol").values(is_staff=True, is_admin=True))
            session.commit()
        for method, path, body in [
            ("GET", f"{STAFF}/users", None),
            ("GET", f"{STAFF}/audit", None),
            ("POST", f"{STAFF}/robots", {"name": "bot"}),
        ]:
            refused = assert_error(carol.request(method, path, json=body), 403, "DENIED")
            assert "JupyterHub token" in refused["message"]
    finally:
        stop()
