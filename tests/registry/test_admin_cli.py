"""The staff's commands for collections, roles and teams, run against the database and storage of a
registry that keeps serving, and the audit trail they leave.
"""

from __future__ import annotations

import httpx
from sqlalchemy import select

from sregistry_jupyter.registry.orm import Event
from tests.conftest import run_cli
from tests.registry.test_transfer import push

API = "/api/v1"
# The commands write as another process would: a read that must see their change at once says so.
FRESH = {"Cache-Control": "no-cache"}


def admin(registry, *args: str, check: bool = True):
    return run_cli("admin", *args, "--data-dir", str(registry.data_dir), "--db-url", registry.db_url, check=check)


def status(response: httpx.Response) -> int:
    return response.status_code


def rows(output: str) -> dict[str, list[str]]:
    """A printed table as its rows' cells, by the first cell; the header and rule lines are checked."""
    header, rule, *lines = output.strip().splitlines()
    assert header.split()[0] == "NAME" and set(rule.replace(" ", "")) == {"-"}
    return {line.split()[0]: line.split() for line in lines}


def admin_events(registry) -> list[tuple[str, str | None, dict]]:
    with registry.session() as session:
        events = session.scalars(select(Event).where(Event.action.like("admin.%")).order_by(Event.id)).all()
        return [(e.action, e.collection, e.detail) for e in events]


def test_collection_commands_bypass_the_team_rule_and_keep_an_owner(registry):
    alice, bob, carol = (registry.client(registry.add_user(name)) for name in ("alice", "bob", "carol"))
    made = admin(registry, "create-collection", "lab", "--owner", "alice", "--private").stdout
    assert "created private collection lab, owned by alice" in made
    lab = alice.get(f"{API}/collections/lab").json()
    assert (lab["private"], lab["owners"]) == (True, ["alice"])

    assert "bob is now owner of lab" in admin(registry, "add-owner", "lab", "bob").stdout
    assert status(push(bob, b"pushed by bob")) == 201
    admin(registry, "add-contributor", "lab", "carol")
    assert status(carol.get(f"{API}/collections/lab")) == 200
    assert status(push(carol, b"pushed by carol", tags=("carol",))) == 403
    admin(registry, "remove-member", "lab", "carol")
    assert status(carol.get(f"{API}/collections/lab", headers=FRESH)) == 404

    admin(registry, "remove-member", "lab", "alice")
    refused = admin(registry, "remove-member", "lab", "bob", check=False)
    assert refused.returncode == 1 and "must keep an owner" in refused.stderr
    assert bob.get(f"{API}/collections/lab/members").json()["items"] == [{"user": "bob", "role": "owner"}]
    assert status(alice.get(f"{API}/collections/lab", headers=FRESH)) == 404

    assert admin_events(registry) == [
        ("admin.create-collection", "lab", {"owner": "alice", "private": True}),
        ("admin.set-role", "lab", {"user": "bob", "role": "owner"}),
        ("admin.set-role", "lab", {"user": "carol", "role": "contributor"}),
        ("admin.remove-member", "lab", {"user": "carol"}),
        ("admin.remove-member", "lab", {"user": "alice"}),
    ]


def test_team_commands_and_listings(registry):
    alice = registry.client(registry.add_user("alice"))
    registry.add_user("bob", staff=True)
    assert status(push(alice, b"an image" * 100)) == 201
    created = admin(registry, "create-team", "group", "--owner", "alice", "--open").stdout
    assert "created open team group, owned by alice" in created
    admin(registry, "add-team-member", "group", "bob")
    team = alice.get(f"{API}/teams/group").json()
    assert team["open"] is True
    assert team["members"] == [{"user": "alice", "role": "owner"}, {"user": "bob", "role": "member"}]
    assert status(alice.post(f"{API}/collections/lab/members", json={"user": "bob"})) == 201

    people = rows(admin(registry, "list", "users").stdout)
    assert (people.keys(), people["bob"][1], people["alice"][1]) == ({"alice", "bob"}, "staff", "user")
    assert rows(admin(registry, "list", "teams").stdout)["group"] == ["group", "open", "alice", "2"]
    listed = rows(admin(registry, "list", "collections").stdout)["lab"]
    assert listed == ["lab", "public", "alice", "bob", "1", "1", "800"]

    assert admin_events(registry) == [
        ("admin.create-team", None, {"team": "group", "owner": "alice", "open": True}),
        ("admin.add-team-member", None, {"team": "group", "user": "bob"}),
    ]


def test_create_user_flags_make_staff_admins_and_robots(registry):
    for name, flags in (("sam", ("--staff",)), ("root", ("--admin",)), ("ci-bot", ("--robot",)), ("pat", ())):
        assert f"created user {name}" in admin(registry, "create-user", name, "--terms-accepted", *flags).stdout
    people = rows(admin(registry, "list", "users").stdout)
    assert {name: row[1] for name, row in people.items() if name in ("sam", "root", "pat")} == {
        "sam": "staff",
        "root": "admin",
        "pat": "user",
    }
    for name, expected in (
        ("sam", (False, True, False)),
        ("root", (True, False, False)),
        ("ci-bot", (False, False, True)),
        ("pat", (False, False, False)),
    ):
        token = admin(registry, "create-token", name).stdout.strip().splitlines()[-1]
        me = registry.client(token).get(f"{API}/user")
        assert me.status_code == 200, me.text
        assert (me.json()["admin"], me.json()["staff"], me.json()["robot"]) == expected, name
