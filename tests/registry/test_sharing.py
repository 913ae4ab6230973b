"""Sharing through the native API: roles in collections under the team rule, the owner a collection always
keeps, stars, and share links that download one image without signing in until they expire or are revoked.
"""

from __future__ import annotations

import datetime as dt
import os

import httpx
import pytest
from sqlalchemy import select, update

from sregistry_jupyter.registry.orm import Event, Share, utcnow
from tests.registry.test_api import assert_error
from tests.registry.test_transfer import IMAGES, digest_of, push

API = "/api/v1"
MAX_SHARE_DAYS = 10
LAB = f"{API}/collections/lab"
FILE = IMAGES.format(c="lab", n="tool") + "/latest/file"
SHARES = IMAGES.format(c="lab", n="tool") + "/latest/shares"


@pytest.fixture
def registry_settings() -> dict:
    return {"max_share_days": MAX_SHARE_DAYS}


def ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


@pytest.fixture
def people(registry) -> dict[str, httpx.Client]:
    return {name: registry.client(registry.add_user(name)) for name in ("alice", "bob", "carol")}


@pytest.fixture
def data(people) -> bytes:
    """``lab/tool:latest``, pushed by alice, who therefore owns ``lab``."""
    content = os.urandom(5000)
    ok(push(people["alice"], content), 201)
    return content


def roles(client: httpx.Client) -> dict[str, str]:
    return {m["user"]: m["role"] for m in ok(client.get(f"{LAB}/members"))["items"]}


def share_a_team(registry, owner: httpx.Client, *others: str) -> None:
    staff = registry.client(registry.add_user("steve", staff=True))
    ok(staff.post(f"{API}/teams", json={"name": "group"}), 201)
    for name in (owner_name(owner), *others):
        ok(staff.post(f"{API}/teams/group/members", json={"user": name}), 201)


def owner_name(client: httpx.Client) -> str:
    return ok(client.get(f"{API}/user"))["name"]


def test_owners_grant_roles_only_to_team_mates_admins_to_anyone(registry, people, data):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    refused = assert_error(alice.post(f"{LAB}/members", json={"user": "bob"}), 403, "DENIED")
    assert "share one of your teams" in refused["message"]
    assert_error(bob.post(f"{LAB}/members", json={"user": "bob", "role": "owner"}), 403)

    share_a_team(registry, alice, "bob")
    assert ok(alice.post(f"{LAB}/members", json={"user": "bob"}), 201) == {"user": "bob", "role": "contributor"}
    assert_error(alice.post(f"{LAB}/members", json={"user": "bob", "role": "owner"}), 409)
    assert_error(alice.post(f"{LAB}/members", json={"user": "bob", "role": "reader"}), 400)
    assert_error(alice.post(f"{LAB}/members", json={"user": "nobody"}), 404)
    assert_error(alice.patch(f"{LAB}/members/carol", json={"role": "owner"}), 404)
    assert_error(bob.post(f"{LAB}/members", json={"user": "carol"}), 403)

    admin = registry.client(registry.add_user("root", admin=True))
    assert ok(admin.post(f"{LAB}/members", json={"user": "carol", "role": "owner"}), 201)["role"] == "owner"
    assert roles(bob) == {"alice": "owner", "carol": "owner", "bob": "contributor"}
    assert_error(carol.patch(f"{LAB}/members/bob", json={"role": "owner"}), 403)
    with registry.session() as session:
        events = session.scalars(select(Event).where(Event.action == "member.add").order_by(Event.id)).all()
    assert [(e.username, e.detail) for e in events] == [
        ("alice", {"user": "bob", "role": "contributor"}),
        ("root", {"user": "carol", "role": "owner"}),
    ]


def test_contributors_pull_a_private_collection_but_do_not_push_or_manage(registry, people, data):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    ok(alice.patch(LAB, json={"private": True}))
    assert_error(bob.get(FILE), 404)
    assert_error(bob.get(f"{LAB}/members"), 404)
    share_a_team(registry, alice, "bob")
    ok(alice.post(f"{LAB}/members", json={"user": "bob", "role": "contributor"}), 201)

    assert bob.get(FILE).content == data
    assert_error(push(bob, b"mine now"), 403)
    assert_error(bob.delete(IMAGES.format(c="lab", n="tool") + "/latest"), 403)
    assert_error(bob.post(f"{LAB}/members", json={"user": "bob", "role": "owner"}), 403)
    assert_error(bob.delete(f"{LAB}/members/alice"), 403)
    assert_error(carol.get(FILE), 404)

    assert ok(alice.patch(f"{LAB}/members/bob", json={"role": "owner"}))["role"] == "owner"
    ok(push(bob, b"now allowed", tags=("bob",)), 201)
    ok(alice.delete(f"{LAB}/members/bob"), 204)
    assert_error(bob.get(FILE), 404)


def test_a_collection_always_keeps_an_owner(registry, people, data):
    alice = people["alice"]
    admin = registry.client(registry.add_user("root", admin=True))
    kept = assert_error(alice.delete(f"{LAB}/members/alice"), 409, "CONFLICT")
    assert "must keep an owner" in kept["message"]
    assert_error(admin.patch(f"{LAB}/members/alice", json={"role": "contributor"}), 409)
    ok(admin.post(f"{LAB}/members", json={"user": "bob", "role": "owner"}), 201)
    assert ok(alice.patch(f"{LAB}/members/alice", json={"role": "contributor"}))["role"] == "contributor"
    assert_error(people["bob"].delete(f"{LAB}/members/bob"), 409)
    assert roles(alice) == {"bob": "owner", "alice": "contributor"}
    assert ok(alice.get(LAB))["owners"] == ["bob"]


def test_stars(registry, people, data):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    assert ok(bob.put(f"{LAB}/star"))["stars"] == 1
    assert ok(bob.put(f"{LAB}/star"))["stars"] == 1
    assert ok(carol.put(f"{LAB}/star"))["stars"] == 2
    assert [c["name"] for c in ok(bob.get(f"{API}/user/stars"))["items"]] == ["lab"]
    assert ok(registry.client().get(LAB))["stars"] == 2
    assert_error(registry.client().put(f"{LAB}/star"), 401)
    reader = registry.client(registry.add_user("bob", scope="read"))
    assert_error(reader.put(f"{LAB}/star"), 403)
    assert_error(bob.put(f"{API}/collections/nothing/star"), 404)

    assert ok(carol.delete(f"{LAB}/star"))["stars"] == 1
    assert ok(carol.delete(f"{LAB}/star"))["stars"] == 1
    assert ok(carol.get(f"{API}/user/stars"))["items"] == []

    ok(alice.patch(LAB, json={"private": True}))
    assert ok(bob.get(f"{API}/user/stars"))["items"] == []
    assert_error(bob.put(f"{LAB}/star"), 404)
    assert ok(alice.put(f"{LAB}/star"))["stars"] == 2


def create_share(client: httpx.Client, url: str = SHARES, **body) -> dict:
    return ok(client.post(url, json=body), 201)


def test_a_share_link_downloads_one_image_anonymously_with_ranges(registry, people, data):
    alice = people["alice"]
    ok(alice.patch(LAB, json={"private": True}))
    share = create_share(alice, days=3)
    assert share["path"] == f"/shares/{share['token']}" and share["url"] == registry.url + share["path"]
    assert (share["digest"], share["downloads"], share["expired"]) == (digest_of(data), 0, False)
    expires = dt.datetime.fromisoformat(share["expires"].removesuffix("Z"))
    assert abs(expires - (utcnow() + dt.timedelta(days=3))) < dt.timedelta(minutes=1)
    with registry.session() as session:
        assert share["token"] not in session.get(Share, share["id"]).hashed

    anonymous = registry.client()
    whole = anonymous.get(share["path"])
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["ETag"] == f'"{digest_of(data)}"'
    part = anonymous.get(share["path"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    head = anonymous.head(share["path"])
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(data))
    assert_error(anonymous.get(share["path"], headers={"Range": "bytes=9000-"}), 416)

    registry.flush()
    listed = ok(alice.get(SHARES))["items"]
    assert [(s["id"], s["downloads"]) for s in listed] == [(share["id"], 1)]
    assert ok(alice.get(f"{LAB}/containers/tool/images/latest"))["downloads"] == 1
    assert_error(anonymous.get(FILE), 404)


def test_a_share_link_reaches_nothing_else(registry, people, data):
    alice = people["alice"]
    other = b"the other image"
    ok(push(alice, other, container="other"), 201)
    ok(alice.patch(LAB, json={"private": True}))
    share = create_share(alice)
    other_share = create_share(alice, IMAGES.format(c="lab", n="other") + "/latest/shares")
    assert registry.client().get(other_share["path"]).content == other

    key_of_other = other_share["token"].split("_")[1]
    secret = share["token"].split("_", 2)[2]
    assert_error(registry.client().get(f"/shares/shr_{key_of_other}_{secret}"), 404)
    holder = registry.client(share["token"])
    assert_error(holder.get(FILE), 401)
    assert_error(holder.get(LAB), 401)
    assert_error(registry.client().get("/shares/not-a-token"), 404)
    assert_error(registry.client().get(share["path"] + "/file"), 404)


def test_expired_and_revoked_links_are_refused(registry, people, data):
    alice = people["alice"]
    expiring, revoked = create_share(alice, days=1), create_share(alice)
    with registry.session() as session:
        past = utcnow() - dt.timedelta(seconds=1)
        session.execute(update(Share).where(Share.id == expiring["id"]).values(expires_at=past))
        session.commit()
    anonymous = registry.client()
    assert "expired" in assert_error(anonymous.get(expiring["path"]), 404)["message"]
    assert anonymous.head(expiring["path"]).status_code == 404
    listed = {s["id"]: s["expired"] for s in ok(alice.get(SHARES))["items"]}
    assert listed == {expiring["id"]: True, revoked["id"]: False}

    assert anonymous.get(revoked["path"]).status_code == 200
    assert_error(people["bob"].delete(f"{SHARES}/{revoked['id']}"), 403)
    assert ok(alice.delete(f"{SHARES}/{revoked['id']}"), 204) == {}
    assert "revoked" in assert_error(anonymous.get(revoked["path"]), 404)["message"]
    assert_error(alice.delete(f"{SHARES}/{revoked['id']}"), 404)
    for out_of_range in ("0", "99999999999", "9" * 5000):
        assert_error(alice.delete(f"{SHARES}/{out_of_range}"), 400, "INVALID")
    assert [s["id"] for s in ok(alice.get(SHARES))["items"]] == [expiring["id"]]

    ok(alice.delete(IMAGES.format(c="lab", n="tool") + "/latest"), 204)
    with registry.session() as session:
        assert session.scalars(select(Share)).all() == []


def test_only_owners_make_share_links_within_the_allowed_days(registry, people, data):
    alice, bob = people["alice"], people["bob"]
    assert_error(bob.post(SHARES, json={"days": 1}), 403)
    assert_error(bob.get(SHARES), 403)
    assert_error(registry.client().post(SHARES, json={}), 401)
    writer = registry.client(registry.add_user("alice", scope="write"))
    reader = registry.client(registry.add_user("alice", scope="read"))
    assert create_share(writer)["expired"] is False
    assert_error(reader.post(SHARES, json={}), 403)
    for days in (0, MAX_SHARE_DAYS + 1, "7", 1.5, True):
        assert str(MAX_SHARE_DAYS) in assert_error(alice.post(SHARES, json={"days": days}), 400)["message"]
    assert create_share(alice, days=MAX_SHARE_DAYS)["id"]
    assert_error(alice.post(IMAGES.format(c="lab", n="tool") + "/v9/shares", json={}), 404)
    ok(alice.patch(LAB, json={"private": True}))
    assert_error(bob.post(SHARES, json={}), 404)
