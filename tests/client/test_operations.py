"""The client's operations against a live registry (SQLite and PostgreSQL), with the sync and the async client."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import httpx
import pytest

from sregistry_jupyter.client import (
    CollectionDetail,
    Conflict,
    Forbidden,
    Image,
    InvalidInput,
    NotFound,
    RegistryUnavailable,
    Unauthorized,
)
from tests.conftest import free_port, wait_for
from tests.jupyter_support import DEFFILE, LABELS


def test_browse_what_was_pushed(registry, connect, sif) -> None:
    alice = connect(registry.url, registry.add_user("alice"))
    tools = sif("tools")
    pushed = alice.push(tools, "lab/tools:1.0", tags=["latest"])
    assert isinstance(pushed, Image) and pushed.tags == ["1.0", "latest"]
    alice.push(sif("other", seed=2), "lab/other:v1")
    alice.create_collection("zoo", description="animals")

    assert alice.whoami().name == "alice"
    page = alice.collections(per_page=1)
    assert (page.total, page.pages, [c.name for c in page.items]) == (2, 2, ["lab"])
    assert [c.name for c in alice.iter_collections(per_page=1)] == ["lab", "zoo"]
    assert [c.name for c in alice.search("zo").items] == ["zoo"]

    lab = alice.collection("lab")
    assert isinstance(lab, CollectionDetail) and lab.owners == ["alice"] and lab.images == 2
    assert sorted(c.name for c in lab.containers_list) == ["other", "tools"]
    container = alice.container("lab", "tools")
    assert {t.name for t in container.tags} == {"1.0", "latest"} and len(container.images) == 1
    assert [t.name for t in alice.tags("lab", "tools")] == ["1.0", "latest"]

    image = alice.image("lab/tools:latest")
    assert image.digest == pushed.digest == "sha256." + hashlib.sha256(tools.read_bytes()).hexdigest()
    assert image.sif.deffile == DEFFILE and image.sif.labels == LABELS
    assert image.sif.partitions[0].parttype and image.arch == "amd64" and image.signed is False
    assert alice.image(f"lab/tools@{image.digest}").tags == ["1.0", "latest"]


def test_tag_freeze_and_delete(registry, connect, sif) -> None:
    alice = connect(registry.url, registry.add_user("alice"))
    first = alice.push(sif("a"), "lab/tools:v1")
    second = alice.push(sif("b", seed=2), "lab/tools:v2")
    moved = alice.tag("lab/tools:v1", "stable")
    assert (moved.name, moved.digest) == ("stable", first.digest)

    frozen = alice.freeze("lab/tools:stable")
    assert frozen.frozen is True
    with pytest.raises(Conflict) as refused:
        alice.tag("lab/tools:v2", "stable")
    assert "frozen" in refused.value.message and refused.value.status == 409
    assert alice.image("lab/tools:stable").digest == first.digest

    alice.delete("lab/tools:v2")
    with pytest.raises(NotFound):
        alice.image(f"lab/tools@{second.digest}")
    alice.untag("lab", "tools", "v1")
    assert [t.name for t in alice.tags("lab", "tools")] == ["stable"]
    with pytest.raises(Conflict):
        alice.delete_container("lab", "tools")
    assert alice.freeze("lab/tools:stable", False).frozen is False
    alice.delete_container("lab", "tools")
    assert alice.collection("lab").containers_list == []


def test_share_with_a_teammate_and_by_link(registry, connect, sif) -> None:
    alice_token, bob_token = registry.add_user("alice"), registry.add_user("bob")
    registry.add_user("carol")
    alice, bob = connect(registry.url, alice_token), connect(registry.url, bob_token)
    alice.create_collection("secret", private=True)
    data = sif("s")
    alice.push(data, "secret/data:v1")
    with pytest.raises(NotFound):
        bob.collection("secret")  # invisible is answered like missing

    admin = registry.client(registry.add_user("root", admin=True))
    assert admin.post("/api/v1/teams", json={"name": "lab-team"}).status_code == 201
    for name in ("alice", "bob"):
        assert admin.post("/api/v1/teams/lab-team/members", json={"user": name}).status_code == 201
    assert alice.teammates() == ["bob", "root"]  # the team's creator is its owner
    assert {t.name for t in alice.teams()} == {"lab-team"}

    with pytest.raises(Forbidden) as refused:
        alice.add_member("secret", "carol")
    assert "team" in refused.value.message
    member = alice.add_member("secret", "bob", "contributor")
    assert (member.user, member.role) == ("bob", "contributor")
    assert {(m.user, m.role) for m in alice.members("secret")} == {("alice", "owner"), ("bob", "contributor")}
    assert bob.image("secret/data:v1").tags == ["v1"]
    assert [c.name for c in bob.pushable()] == []
    assert [c.name for c in alice.pushable()] == ["secret"]

    link = alice.share_link("secret/data:v1", days=3)
    assert link.url.startswith(registry.url + "/shares/")
    assert dt.timedelta(days=2.9) < link.expires - dt.datetime.now(dt.UTC) < dt.timedelta(days=3.1)
    downloaded = httpx.get(link.url, timeout=30)
    assert downloaded.status_code == 200 and downloaded.content == data.read_bytes()
    alice.remove_member("secret", "bob")
    with pytest.raises(NotFound):
        bob.collection("secret")


def test_stars_and_stats(registry, connect, sif) -> None:
    alice = connect(registry.url, registry.add_user("alice"))
    image = sif("t", size=200_000)
    alice.push(image, "lab/tools:v1")
    assert alice.star("lab").stars == 1
    assert [c.name for c in alice.stars()] == ["lab"]
    assert alice.unstar("lab").stars == 0
    alice.pull("lab/tools:v1", registry.data_dir.parent)
    assert wait_for(lambda: alice.stats(days=7).containers[0].downloads == 1)  # pull counts may be written behind
    stats = alice.stats(days=7)
    assert stats.totals.images == 1 and stats.totals.size == image.stat().st_size
    assert [(c.name, c.downloads) for c in stats.containers] == [("tools", 1)]
    assert len(stats.activity) == 7 and stats.activity[-1].pushes == 1 and stats.activity[-1].pulls == 1


def test_every_refusal_is_its_own_exception_with_the_registry_words(registry, connect, sif) -> None:
    bob = connect(registry.url, registry.add_user("bob"))
    bob.create_collection("bobs")
    alice = connect(registry.url, registry.add_user("alice"))

    with pytest.raises(NotFound) as missing:
        alice.collection("nothing-here")
    assert missing.value.message == "no collection 'nothing-here'" and missing.value.code == "NOT_FOUND"
    with pytest.raises(Forbidden) as forbidden:
        alice.delete_collection("bobs")
    assert forbidden.value.message == "deleting a collection in collection 'bobs' is for its owners"
    with pytest.raises(Conflict) as taken:
        alice.push(sif("x"), "bobs/tools:v1")
    assert taken.value.message == "collection name 'bobs' is taken" and taken.value.status == 409
    with pytest.raises(Conflict):
        alice.create_collection("bobs")
    with pytest.raises(InvalidInput) as invalid:
        alice.create_collection("Not A Name")
    assert invalid.value.status == 400
    with pytest.raises(InvalidInput) as local:
        alice.image("no-container-here")
    assert "collection/container:tag" in local.value.message

    stranger = connect(registry.url, "sreg_not-a-real-token")
    with pytest.raises(Unauthorized):
        stranger.whoami()
    with pytest.raises(RegistryUnavailable) as down:
        connect(f"http://127.0.0.1:{free_port()}", "t").whoami()
    assert "cannot be reached" in down.value.message


def test_a_read_token_cannot_push_and_nothing_appears(registry, connect, sif) -> None:
    writer = connect(registry.url, registry.add_user("alice"))
    writer.create_collection("lab")
    reader = connect(registry.url, registry.add_user("alice", scope="read"))
    with pytest.raises(Forbidden):
        reader.push(sif("r"), "lab/tools:v1")
    assert writer.collection("lab").containers_list == []


def test_pull_to_a_folder_or_a_file_is_verified(registry, connect, sif, tmp_path: Path) -> None:
    alice = connect(registry.url, registry.add_user("alice"))
    source = sif("p", size=3 << 20)
    alice.push(source, "lab/tools:v1")
    folder = tmp_path / "pulled"
    folder.mkdir()
    seen: list[tuple[int, int]] = []
    into_folder = alice.pull("lab/tools:v1", folder, progress=lambda done, total: seen.append((done, total)))
    assert into_folder == folder / "tools_v1.sif" and into_folder.read_bytes() == source.read_bytes()
    assert seen[-1] == (source.stat().st_size, source.stat().st_size) and len(seen) > 2
    named = alice.pull("lab/tools:v1", folder / "mine.sif")
    assert named.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["mine.sif", "tools_v1.sif"]  # no partial file left
    with pytest.raises(InvalidInput):
        alice.pull("lab/tools:v1", tmp_path / "no" / "such" / "folder.sif")
    with pytest.raises(NotFound):
        alice.pull("lab/tools:nope", folder)
