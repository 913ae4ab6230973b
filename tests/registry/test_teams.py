"""Teams through the native API: who may create and manage them, open and invite-only membership, the
owner a team always keeps, and invitations that work once, expire and can be revoked.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import httpx
import pytest
from sqlalchemy import select, update

from sregistry_jupyter.registry.access import Policy
from sregistry_jupyter.registry.orm import Event, Invitation, utcnow
from tests.registry.test_api import assert_error

API = "/api/v1"
INVITATION_DAYS = 2.0


@pytest.fixture
def registry_settings() -> dict:
    return {"policy": Policy(users_create_teams=True), "invitation_days": INVITATION_DAYS}


def ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


def make_team(client: httpx.Client, name: str = "lab", **fields) -> dict:
    return ok(client.post(f"{API}/teams", json={"name": name, **fields}), 201)


def roles(client: httpx.Client, team: str = "lab") -> dict[str, str]:
    return {m["user"]: m["role"] for m in ok(client.get(f"{API}/teams/{team}/members"))["items"]}


def invite(client: httpx.Client, team: str = "lab") -> dict:
    return ok(client.post(f"{API}/teams/{team}/invitations"), 201)


@pytest.fixture
def people(registry) -> dict[str, httpx.Client]:
    return {name: registry.client(registry.add_user(name)) for name in ("alice", "bob", "carol")}


@pytest.mark.parametrize("registry_settings", [{}])
def test_only_staff_create_teams_unless_the_registry_lets_users(registry):
    alice = registry.client(registry.add_user("alice"))
    staff = registry.client(registry.add_user("steve", staff=True))
    body = assert_error(alice.post(f"{API}/teams", json={"name": "lab"}), 403, "DENIED")
    assert body["message"] == "only the registry's staff may create teams here; ask them"
    created = make_team(staff, "lab", description="the lab", open=True)
    assert (created["owners"], created["your_role"], created["open"]) == (["steve"], "owner", True)
    assert_error(registry.client().post(f"{API}/teams", json={"name": "other"}), 401)


def test_users_create_teams_where_allowed_but_not_with_a_write_token(registry, people):
    team = make_team(people["alice"], "lab", description="our group")
    assert team["members"] == [{"user": "alice", "role": "owner"}]
    writer = registry.client(registry.add_user("alice", scope="write"))
    assert_error(writer.post(f"{API}/teams", json={"name": "other"}), 403)
    assert_error(people["bob"].post(f"{API}/teams", json={"name": "lab"}), 409, "CONFLICT")
    assert_error(people["bob"].post(f"{API}/teams", json={"name": "Not Valid"}), 400)
    assert_error(people["bob"].post(f"{API}/teams", json={"name": "x" * 65}), 400)
    assert_error(people["bob"].post(f"{API}/teams", json={"name": "ok", "open": "yes"}), 400)


def test_team_lifecycle_and_who_may_change_it(registry, people):
    alice, bob = people["alice"], people["bob"]
    staff = registry.client(registry.add_user("steve", staff=True))
    made = alice.post(f"{API}/teams", json={"name": "lab"})
    assert made.headers["Location"] == f"{API}/teams/lab"
    make_team(alice, "zoo")

    assert [t["name"] for t in ok(bob.get(f"{API}/teams"))["items"]] == ["lab", "zoo"]
    seen = ok(bob.get(f"{API}/teams/lab"))
    assert (seen["owners"], seen["your_role"], seen["open"]) == (["alice"], None, False)
    assert_error(registry.client().get(f"{API}/teams"), 401)
    assert_error(registry.client().get(f"{API}/teams/lab"), 401)
    assert_error(bob.get(f"{API}/teams/nothing"), 404)

    assert_error(bob.patch(f"{API}/teams/lab", json={"open": True}), 403)
    assert ok(alice.patch(f"{API}/teams/lab", json={"description": "the lab", "open": True}))["open"] is True
    assert ok(staff.patch(f"{API}/teams/lab", json={"open": False}))["open"] is False
    assert ok(bob.get(f"{API}/teams/lab"))["description"] == "the lab"

    assert_error(bob.delete(f"{API}/teams/lab"), 403)
    assert ok(alice.delete(f"{API}/teams/lab"), 204) == {}
    assert_error(alice.get(f"{API}/teams/lab"), 404)
    assert ok(staff.delete(f"{API}/teams/zoo"), 204) == {}
    with registry.session() as session:
        actions = session.scalars(select(Event.action).where(Event.action.like("team.%")).order_by(Event.id)).all()
    assert actions == ["team.create", "team.create", "team.update", "team.update", "team.delete", "team.delete"]


def test_open_teams_take_anyone_invite_only_teams_do_not(registry, people):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    make_team(alice, "open", open=True)
    make_team(alice, "closed")
    joined = ok(bob.post(f"{API}/teams/open/join"))
    assert joined["your_role"] == "member"
    assert ok(bob.post(f"{API}/teams/open/join"))["members"] == joined["members"]
    refused = assert_error(carol.post(f"{API}/teams/closed/join"), 403)
    assert "invite-only" in refused["message"]
    assert "carol" not in roles(alice, "closed")
    reader = registry.client(registry.add_user("carol", scope="read"))
    assert_error(reader.post(f"{API}/teams/open/join"), 403)

    assert ok(bob.post(f"{API}/teams/open/leave"), 204) == {}
    assert roles(alice, "open") == {"alice": "owner"}
    assert_error(bob.post(f"{API}/teams/open/leave"), 403)


def test_owners_manage_members_and_a_team_always_keeps_an_owner(registry, people):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    make_team(alice)
    assert ok(alice.post(f"{API}/teams/lab/members", json={"user": "bob"}), 201) == {"user": "bob", "role": "member"}
    assert_error(alice.post(f"{API}/teams/lab/members", json={"user": "bob"}), 409)
    assert_error(alice.post(f"{API}/teams/lab/members", json={"user": "nobody"}), 404)
    assert_error(alice.post(f"{API}/teams/lab/members", json={"user": "Not Valid"}), 400)
    assert_error(alice.delete(f"{API}/teams/lab/members/%00"), 400)
    assert_error(alice.post(f"{API}/teams/lab/members", json={"user": "carol", "role": "king"}), 400)
    assert_error(carol.post(f"{API}/teams/lab/members", json={"user": "carol"}), 403)
    assert_error(bob.post(f"{API}/teams/lab/members", json={"user": "carol"}), 403)
    ok(alice.post(f"{API}/teams/lab/members", json={"user": "carol"}), 201)
    assert_error(bob.delete(f"{API}/teams/lab/members/carol"), 403)

    kept = assert_error(alice.post(f"{API}/teams/lab/leave"), 409, "CONFLICT")
    assert "must keep an owner" in kept["message"]
    assert_error(alice.patch(f"{API}/teams/lab/members/alice", json={"role": "member"}), 409)
    assert_error(alice.delete(f"{API}/teams/lab/members/alice"), 409)

    assert ok(alice.patch(f"{API}/teams/lab/members/bob", json={"role": "owner"}))["role"] == "owner"
    assert ok(bob.get(f"{API}/teams/lab"))["owners"] == ["alice", "bob"]
    assert ok(bob.patch(f"{API}/teams/lab/members/alice", json={"role": "member"}))["role"] == "member"
    assert_error(alice.delete(f"{API}/teams/lab/members/carol"), 403)
    ok(bob.delete(f"{API}/teams/lab/members/carol"), 204)
    ok(alice.post(f"{API}/teams/lab/leave"), 204)
    assert roles(bob) == {"bob": "owner"}
    assert_error(bob.delete(f"{API}/teams/lab/members/carol"), 404)


def test_an_invitation_works_once(registry, people):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    make_team(alice, description="the lab")
    invitation = invite(alice)
    code = invitation["code"]
    assert invitation["path"] == f"/invitations/{code}"
    assert invitation["url"] == registry.url + invitation["path"]
    assert [i["id"] for i in ok(alice.get(f"{API}/teams/lab/invitations"))["items"]] == [invitation["id"]]
    with registry.session() as session:
        stored = session.get(Invitation, invitation["id"]).code_hash
    assert stored == hashlib.sha256(code.split(".")[-1].encode()).hexdigest()

    anonymous = registry.client()
    assert ok(anonymous.get(f"{API}/invitations/{code}")) == {"team": "lab", "description": "the lab"}
    assert_error(anonymous.post(f"{API}/invitations/{code}"), 401)
    assert ok(bob.post(f"{API}/invitations/{code}"))["your_role"] == "member"
    assert roles(alice) == {"alice": "owner", "bob": "member"}

    for client in (carol, bob):
        reused = assert_error(client.post(f"{API}/invitations/{code}"), 400, "INVALID")
        assert "already used" in reused["message"]
    assert "already used" in assert_error(anonymous.get(f"{API}/invitations/{code}"), 400)["message"]
    assert "carol" not in roles(alice)
    assert ok(alice.get(f"{API}/teams/lab/invitations"))["items"] == []
    assert_error(alice.delete(f"{API}/teams/lab/invitations/{invitation['id']}"), 409)


def test_invitations_expire(registry, people):
    alice, bob = people["alice"], people["bob"]
    make_team(alice)
    invitation = invite(alice)
    expires = dt.datetime.fromisoformat(invitation["expires"].removesuffix("Z"))
    assert abs(expires - (utcnow() + dt.timedelta(days=INVITATION_DAYS))) < dt.timedelta(minutes=1)
    with registry.session() as session:
        past = utcnow() - dt.timedelta(seconds=1)
        session.execute(update(Invitation).where(Invitation.id == invitation["id"]).values(expires_at=past))
        session.commit()
    expired = assert_error(bob.post(f"{API}/invitations/{invitation['code']}"), 400)
    assert "expired" in expired["message"]
    assert_error(bob.get(f"{API}/invitations/{invitation['code']}"), 400)
    assert "bob" not in roles(alice)
    assert ok(alice.get(f"{API}/teams/lab/invitations"))["items"] == []


def test_wrong_revoked_and_orphaned_codes_are_refused(registry, people):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    make_team(alice)
    make_team(alice, "zoo")
    code = invite(alice)["code"]
    team_id, invitation_id, secret = code.split(".")
    forged = f"{team_id}.{invitation_id}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    for wrong in (forged, "garbage", f"{team_id}.{invitation_id}", f"{int(team_id) + 1}.{invitation_id}.{secret}"):
        assert "no such invitation" in assert_error(bob.post(f"{API}/invitations/{wrong}"), 404)["message"]
    assert_error(bob.get(f"{API}/invitations/{forged}"), 404)
    assert_error(bob.post(f"{API}/teams/lab/invitations"), 403)
    assert_error(bob.get(f"{API}/teams/lab/invitations"), 403)
    assert_error(bob.delete(f"{API}/teams/lab/invitations/{invitation_id}"), 403)

    revoked = invite(alice)
    assert_error(alice.delete(f"{API}/teams/zoo/invitations/{revoked['id']}"), 404)
    assert_error(alice.delete(f"{API}/teams/lab/invitations/x1"), 400)
    for out_of_range in ("0", "99999999999", "9" * 5000):
        assert_error(alice.delete(f"{API}/teams/lab/invitations/{out_of_range}"), 400, "INVALID")
    assert ok(alice.delete(f"{API}/teams/lab/invitations/{revoked['id']}"), 204) == {}
    assert_error(bob.post(f"{API}/invitations/{revoked['code']}"), 404)
    assert_error(alice.delete(f"{API}/teams/lab/invitations/{revoked['id']}"), 404)

    orphan = invite(alice, "zoo")["code"]
    ok(alice.delete(f"{API}/teams/zoo"), 204)
    gone = assert_error(carol.post(f"{API}/invitations/{orphan}"), 400)
    assert "deleted" in gone["message"]
    assert ok(bob.post(f"{API}/invitations/{code}"))["name"] == "lab"
