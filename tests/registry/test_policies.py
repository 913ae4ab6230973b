"""Collection policies (users may create collections or not, a limit per user, private by default, private
only) on every path that creates a collection or changes its privacy: the native API, a native push into a
new collection, the real library client (whose push creates the collection through ``POST /v1/collections``)
and the real sregistry-cli (whose signed push creates it on upload).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from sregistry_jupyter.registry.access import Policy, Principal
from sregistry_jupyter.registry.errors import Forbidden
from sregistry_jupyter.registry.orm import Collection
from sregistry_jupyter.registry.services import collections, users
from tests.gotools import make_sif
from tests.registry.test_library_client import LibClient
from tests.registry.test_sregistry_cli import Cli, output
from tests.registry.test_transfer import push

STAFF_ONLY = "only the registry's staff may create collections here"
AT_LIMIT = "you already own 1 collection, the most this registry allows"


@pytest.fixture
def sif(mksif: Path, tmp_path: Path) -> Path:
    return make_sif(mksif, tmp_path / "img.sif", size=20_000, seed=5)


@pytest.fixture
def lib(registry, libclient_bin: Path) -> LibClient:
    return LibClient(libclient_bin, registry.url)


def privacy(registry) -> dict[str, bool]:
    with registry.session() as session:
        return {name: private for name, private in session.execute(select(Collection.name, Collection.private))}


def refused(response, message: str) -> None:
    assert response.status_code == 403, response.text
    assert message in response.json()["message"]


@pytest.mark.parametrize("registry_settings", [{"policy": Policy(private_only=True)}])
def test_private_only_makes_every_new_collection_private_and_none_public(registry, lib, sif, tmp_path):
    token = registry.add_user("alice")
    admin = registry.client(registry.add_user("root", admin=True))
    api = registry.client(token)

    assert api.post("/api/v1/collections", json={"name": "asked", "private": False}).json()["private"] is True
    assert push(api, b"native bytes", collection="pushed").status_code == 201
    lib.push(sif, "alice/library-push/demo", "latest", token)
    cli = Cli(registry.url, "alice", token, tmp_path / "cli")
    pushed = cli("push", "--name", "cli-push/demo", "--tag", "latest", str(sif))
    assert pushed.returncode == 0, output(pushed)

    assert privacy(registry) == {"asked": True, "pushed": True, "library-push": True, "cli-push": True}
    for client in (api, admin):
        refused(client.patch("/api/v1/collections/asked", json={"private": False}), "none can be made public")
    assert api.patch("/api/v1/collections/asked", json={"description": "still fine"}).status_code == 200
    assert privacy(registry)["asked"] is True


@pytest.mark.parametrize("registry_settings", [{"policy": Policy(private_by_default=True)}])
def test_private_by_default_applies_unless_public_is_asked_for(registry, lib, sif):
    token = registry.add_user("alice")
    api = registry.client(token)

    assert api.post("/api/v1/collections", json={"name": "plain"}).json()["private"] is True
    assert api.post("/api/v1/collections", json={"name": "open", "private": False}).json()["private"] is False
    assert push(api, b"native bytes", collection="pushed").status_code == 201
    lib.push(sif, "alice/library-push/demo", "latest", token)

    assert privacy(registry) == {"plain": True, "open": False, "pushed": True, "library-push": True}
    assert api.patch("/api/v1/collections/plain", json={"private": False}).json()["private"] is False
    assert registry.client().get("/api/v1/collections/library-push").status_code == 404


@pytest.mark.parametrize("registry_settings", [{"policy": Policy(users_create_collections=False)}])
def test_only_staff_create_collections_when_users_may_not(registry, lib, sif, tmp_path):
    token = registry.add_user("alice", scope="write")
    staff_token = registry.add_user("keeper", staff=True, scope="write")
    api, staff = registry.client(token), registry.client(staff_token)

    refused(api.post("/api/v1/collections", json={"name": "mine"}), STAFF_ONLY)
    refused(push(api, b"native bytes", collection="mine"), STAFF_ONLY)
    assert STAFF_ONLY in lib.fails("push", "-file", str(sif), "-ref", "alice/mine/demo", token=token)
    denied = Cli(registry.url, "alice", token, tmp_path / "cli")("push", "--name", "mine/demo", str(sif))
    assert denied.returncode != 0 and "403" in output(denied)
    assert privacy(registry) == {}

    assert staff.post("/api/v1/collections", json={"name": "shared"}).status_code == 201
    assert push(staff, b"staff bytes", collection="pushed").status_code == 201
    lib.push(sif, "keeper/library-push/demo", "latest", staff_token)
    assert set(privacy(registry)) == {"shared", "pushed", "library-push"}


@pytest.mark.parametrize("registry_settings", [{"policy": Policy(collection_limit=1)}])
def test_collection_limit_refuses_a_second_collection_but_not_pushes_into_the_first(registry, lib, sif, tmp_path):
    token = registry.add_user("alice", scope="write")
    api = registry.client(token)
    cli = Cli(registry.url, "alice", token, tmp_path / "cli")
    assert api.post("/api/v1/collections", json={"name": "first"}).status_code == 201

    refused(api.post("/api/v1/collections", json={"name": "second"}), AT_LIMIT)
    refused(push(api, b"native bytes", collection="second"), AT_LIMIT)
    assert AT_LIMIT in lib.fails("push", "-file", str(sif), "-ref", "alice/second/demo", token=token)
    denied = cli("push", "--name", "second/demo", str(sif))
    assert denied.returncode != 0 and "403" in output(denied)
    assert set(privacy(registry)) == {"first"}

    assert push(api, b"native bytes", collection="first", container="native").status_code == 201
    lib.push(sif, "alice/first/library", "latest", token)
    pushed = cli("push", "--name", "first/cli", "--tag", "latest", str(sif))
    assert pushed.returncode == 0, output(pushed)
    names = [c["name"] for c in api.get("/api/v1/collections/first").json()["containers_list"]]
    assert names == ["cli", "library", "native"]
    staff = registry.client(registry.add_user("keeper", staff=True, scope="write"))
    assert [staff.post("/api/v1/collections", json={"name": f"s{i}"}).status_code for i in range(2)] == [201, 201]


@pytest.mark.parametrize("registry_settings", [{"policy": Policy(collection_limit=1)}])
def test_concurrent_creations_by_one_user_are_counted_one_after_the_other(registry):
    registry.add_user("alice", scope="write")
    policy = registry.context.policy
    first, second = registry.session(), registry.session()
    outcome: list[object] = []

    def create_second() -> None:
        principal = Principal(users.get_user(second, "alice"), "write", policy=policy)
        try:
            collections.create_collection(second, principal, "two")
            second.commit()
            outcome.append("created")
        except Forbidden as error:
            outcome.append(error.message)

    try:
        principal = Principal(users.get_user(first, "alice"), "write", policy=policy)
        collections.create_collection(first, principal, "one")
        racer = threading.Thread(target=create_second)
        racer.start()
        racer.join(0.5)
        assert racer.is_alive(), "the second creation did not wait for the first"
        first.commit()
        racer.join(30)
    finally:
        first.close()
        second.close()
    assert outcome and AT_LIMIT in str(outcome[0])
    assert set(privacy(registry)) == {"one"}
