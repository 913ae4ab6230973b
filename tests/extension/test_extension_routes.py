"""Every route of the extension's REST API, in a real Jupyter server talking to a live registry."""

from __future__ import annotations

import json
import os

import pytest
from tornado.httpclient import HTTPClientError

from sregistry_jupyter.client import RegistryClient
from tests.conftest import blobs_on_disk
from tests.jupyter_support import CuttingProxy


def test_the_extension_is_loaded(jp_serverapp) -> None:
    assert "sregistry_jupyter" in jp_serverapp.extension_manager.extensions
    assert jp_serverapp.extension_manager.extensions["sregistry_jupyter"].enabled


async def test_whoami_names_the_person(api, registry) -> None:
    status, me = await api("whoami")
    assert status == 200
    assert me == {
        "registry_url": registry.url,
        "user": {"name": "alice", "is_admin": False, "is_staff": False},
        "message": None,
    }


@pytest.mark.parametrize("credential", [""])
async def test_whoami_without_a_credential_says_what_to_set(api) -> None:
    status, me = await api("whoami")
    assert status == 200 and me["user"] is None and "SREGISTRY_TOKEN" in me["message"]
    status, page = await api("collections")
    assert status == 200 and page["items"] == []  # what anyone may see, which is nothing yet
    status, error = await api("pushable")
    assert status == 401 and error["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize("credential", ["sreg_not-a-token"])
async def test_whoami_with_a_refused_token_gives_the_registry_words(api) -> None:
    _, me = await api("whoami")
    assert me["user"] is None and "token" in me["message"]


@pytest.mark.parametrize("registry_url", ["unreachable"], indirect=True)
async def test_an_unreachable_registry_is_a_502_with_a_sentence(api, registry_url) -> None:
    status, error = await api("collections")
    assert status == 502 and "cannot be reached" in error["message"] and registry_url in error["message"]
    _, me = await api("whoami")
    assert me["user"] is None and "cannot be reached" in me["message"]


async def test_requests_without_jupyter_credentials_are_refused(jp_fetch) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("sregistry", "api", "whoami", headers={"Authorization": ""})
    assert refused.value.code == 403


async def test_browse_collections_containers_and_images(api, registry, credential, sif) -> None:
    client = RegistryClient(registry.url, credential)
    pushed = client.push(sif("tools"), "lab/tools:v1")
    client.create_collection("zoo")
    bob = RegistryClient(registry.url, registry.add_user("bob"))
    bob.create_collection("hidden", private=True)

    status, page = await api("collections", per_page="1")
    assert status == 200 and (page["total"], page["pages"], page["items"][0]["name"]) == (2, 2, "lab")
    _, found = await api("collections", q="zo")
    assert [c["name"] for c in found["items"]] == ["zoo"]
    _, lab = await api("collections/lab")
    assert [c["name"] for c in lab["containers_list"]] == ["tools"]
    _, container = await api("collections/lab/containers/tools")
    assert container["tags"][0]["name"] == "v1" and container["images"][0]["digest"] == pushed.digest
    for ref in ("v1", pushed.digest):
        status, image = await api(f"collections/lab/containers/tools/images/{ref}")
        assert status == 200 and image["digest"] == pushed.digest
        assert image["sif"]["labels"]["maintainer"] == "alice@example.org" and image["sif"]["deffile"]
    status, pushable = await api("pushable")
    assert status == 200, pushable
    assert [c["name"] for c in pushable["items"]] == ["lab", "zoo"], pushable

    status, error = await api("collections/hidden")
    assert status == 404 and error == {"message": "no collection 'hidden'", "code": "NOT_FOUND"}
    status, error = await api("collections", page="0")
    assert status == 400 and "page" in error["message"]
    status, error = await api("collections/lab/containers/tools/images/not a tag!")
    assert status == 400


async def test_stats_and_figures(api, registry, credential, sif) -> None:
    RegistryClient(registry.url, credential).push(sif("s", size=300_000), "lab/tools:v1")
    status, stats = await api("stats", days="7")
    assert status == 200 and stats["totals"]["images"] == 1 and len(stats["activity"]) == 7
    status, treemap = await api("figures/treemap")
    assert status == 200 and treemap["data"][0]["type"] == "treemap"
    assert set(treemap["data"][0]["ids"]) == {"registry:", "lab", "lab/tools"}
    _, by_age = await api("figures/treemap", color_by="age")
    assert by_age["data"][0]["marker"]["colorscale"] != treemap["data"][0]["marker"]["colorscale"]
    _, storage = await api("figures/storage")
    assert storage["data"][0]["y"] == ["lab"] and storage["data"][0]["x"] == [stats["totals"]["size"]]
    _, activity = await api("figures/activity", days="3")
    assert [trace["name"] for trace in activity["data"]] == ["pushes", "pulls"]
    assert activity["data"][0]["y"][-1] == 1
    status, error = await api("figures/pie")
    assert status == 400 and "treemap" in error["message"]
    status, error = await api("figures/treemap", color_by="colour")
    assert status == 400


async def test_push_from_the_workspace_in_the_background(api, wait_transfer, workspace, registry, sif) -> None:
    source = sif("tools", folder=workspace / "images")
    status, transfer = await api(
        "transfers",
        method="POST",
        body={"direction": "push", "path": "images/tools.sif", "ref": "lab/tools:v1", "tags": ["latest"]},
    )
    assert status == 202 and transfer["state"] in ("queued", "running") and transfer["path"] == "images/tools.sif"
    done = await wait_transfer(transfer["id"])
    assert done["state"] == "done", done
    assert done["bytes_done"] == done["bytes_total"] == source.stat().st_size
    assert done["result"]["tags"] == ["latest", "v1"] and done["finished_at"] and done["started_at"]
    _, listed = await api("transfers")
    assert [t["id"] for t in listed["items"]] == [transfer["id"]]
    assert blobs_on_disk(registry) == [done["result"]["digest"][7:]]


async def test_pull_into_a_chosen_folder(api, wait_transfer, workspace, registry, credential, sif) -> None:
    source = sif("tools")
    RegistryClient(registry.url, credential).push(source, "lab/tools:v1")
    (workspace / "pulled").mkdir()
    _, transfer = await api(
        "transfers", method="POST", body={"direction": "pull", "ref": "lab/tools:v1", "folder": "pulled"}
    )
    done = await wait_transfer(transfer["id"])
    assert done["state"] == "done" and done["result"] == {"path": "pulled/tools_v1.sif"}
    assert (workspace / "pulled" / "tools_v1.sif").read_bytes() == source.read_bytes()

    status, error = await api(
        "transfers", method="POST", body={"direction": "pull", "ref": "lab/tools:v1", "folder": "pulled"}
    )
    assert status == 409 and "already exists" in error["message"]
    _, transfer = await api(
        "transfers",
        method="POST",
        body={"direction": "pull", "ref": "lab/tools:v1", "folder": "", "filename": "mine.sif"},
    )
    assert (await wait_transfer(transfer["id"]))["result"] == {"path": "mine.sif"}


@pytest.mark.parametrize(
    "body",
    [
        {"direction": "push", "path": "../outside.sif", "ref": "lab/tools:v1"},
        {"direction": "push", "path": "/etc/passwd", "ref": "lab/tools:v1"},
        {"direction": "push", "path": "link-out/secret.sif", "ref": "lab/tools:v1"},
        {"direction": "pull", "ref": "lab/tools:v1", "folder": ".."},
        {"direction": "pull", "ref": "lab/tools:v1", "folder": "link-out"},
        {"direction": "pull", "ref": "lab/tools:v1", "folder": "/tmp"},
    ],
)
async def test_paths_outside_the_workspace_are_refused(api, workspace, tmp_path, body) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.sif").write_bytes(b"secret")
    (tmp_path / "outside.sif").write_bytes(b"secret")
    (workspace / "link-out").symlink_to(outside)
    status, error = await api("transfers", method="POST", body=body)
    assert (status, error["message"]) == (400, "path outside the workspace")
    _, listed = await api("transfers")
    assert listed["items"] == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"direction": "sideways"}, "direction"),
        ({"direction": "push", "path": "x.sif"}, "ref"),
        ({"direction": "push", "path": "missing.sif", "ref": "lab/tools:v1"}, "no such path"),
        ({"direction": "push", "path": ".", "ref": "lab/tools:v1"}, "not a file"),
        ({"direction": "push", "path": "x.sif", "ref": "lab/tools:v1", "tags": "v2"}, "tags"),
        ({"direction": "pull", "ref": "Not/A:Ref!"}, "image reference"),
        ({"direction": "pull", "ref": "lab/tools:v1", "filename": "a/b.sif"}, "plain file name"),
    ],
)
async def test_malformed_transfer_requests_are_400s(api, workspace, body, words) -> None:
    (workspace / "x.sif").write_bytes(b"x")
    status, error = await api("transfers", method="POST", body=body)
    assert status == 400 and words in error["message"]


async def test_a_push_into_someone_elses_collection_fails_with_the_registry_words(
    api, wait_transfer, workspace, registry, sif
) -> None:
    RegistryClient(registry.url, registry.add_user("bob")).create_collection("bobs", private=True)
    sif("mine", folder=workspace)
    _, transfer = await api(
        "transfers", method="POST", body={"direction": "push", "path": "mine.sif", "ref": "bobs/tools:v1"}
    )
    failed = await wait_transfer(transfer["id"])
    assert failed["state"] == "failed" and "bobs" in failed["error"]
    _, error = await api("transfers", method="POST", body={"direction": "pull", "ref": "bobs/tools:v1"})
    pulled = await wait_transfer(error["id"])
    assert pulled["state"] == "failed" and "bobs" in pulled["error"]
    assert sorted(p.name for p in workspace.iterdir()) == ["mine.sif", "mine.sif.def"]


async def test_unknown_transfers_are_404s(api) -> None:
    assert (await api("transfers/nope"))[0] == 404
    assert (await api("transfers/nope", method="DELETE"))[0] == 404
    assert (await api("transfers/nope/events"))[0] == 404


async def test_share_with_a_teammate_and_by_link(api, registry, credential, sif) -> None:
    client = RegistryClient(registry.url, credential)
    client.push(sif("t"), "lab/tools:v1")
    registry.add_user("bob")
    admin = registry.client(registry.add_user("root", admin=True))
    admin.post("/api/v1/teams", json={"name": "lab-team"})
    for name in ("alice", "bob"):
        admin.post("/api/v1/teams/lab-team/members", json={"user": name})

    status, mates = await api("teammates")
    assert status == 200 and mates == {"items": [{"name": "bob"}, {"name": "root"}]}
    status, member = await api("collections/lab/members", method="POST", body={"user": "bob", "role": "owner"})
    assert status == 201 and member == {"user": "bob", "role": "owner"}
    _, listed = await api("collections/lab/members")
    assert {(m["user"], m["role"]) for m in listed["items"]} == {("alice", "owner"), ("bob", "owner")}
    status, error = await api("collections/lab/members", method="POST", body={"user": "bob", "role": "boss"})
    assert status == 400
    status, error = await api("collections/lab/members", method="POST", body={"user": "nobody-at-all"})
    assert status == 404
    assert (await api("collections/lab/members/bob", method="DELETE"))[0] == 204
    assert [m["user"] for m in (await api("collections/lab/members"))[1]["items"]] == ["alice"]

    status, link = await api("shares", method="POST", body={"ref": "lab/tools:v1", "days": 2})
    assert status == 201 and set(link) == {"url", "expires_at"} and "/shares/" in link["url"]
    status, error = await api("shares", method="POST", body={"ref": "lab/tools:v1", "days": 9999})
    assert status == 400 and "days" in error["message"]


async def test_server_sent_events_follow_a_transfer_to_its_end(api, jp_fetch, workspace, sif) -> None:
    sif("big", size=8 << 20, folder=workspace)
    _, transfer = await api(
        "transfers", method="POST", body={"direction": "push", "path": "big.sif", "ref": "lab/big:v1"}
    )
    response = await jp_fetch("sregistry", "api", "transfers", transfer["id"], "events", request_timeout=60)
    assert response.headers["Content-Type"] == "text/event-stream"
    events = [json.loads(line[5:]) for line in response.body.decode().splitlines() if line.startswith("data:")]
    assert events[-1]["state"] == "done" and events[-1]["bytes_done"] == (workspace / "big.sif").stat().st_size
    done = [e["bytes_done"] for e in events]
    assert done == sorted(done)
    assert sum(1 for e in events if e["state"] == "done") == 1


@pytest.fixture
def slow_proxy(registry):
    host, port = registry.url.removeprefix("http://").split(":")
    proxy = CuttingProxy((host, int(port)), pace=0.02).start()
    yield proxy
    proxy.stop()


async def test_cancelling_a_push_leaves_nothing_in_the_registry(
    api, wait_transfer, workspace, registry, sif, monkeypatch, slow_proxy
) -> None:
    sif("big", size=6 << 20, folder=workspace)
    app_token = registry.add_user("alice")
    RegistryClient(registry.url, app_token).create_collection("lab")
    await _point_extension_at(api, slow_proxy.url)
    _, transfer = await api(
        "transfers", method="POST", body={"direction": "push", "path": "big.sif", "ref": "lab/big:v1"}
    )
    await _wait_for_bytes(api, transfer["id"])
    assert (await api(f"transfers/{transfer['id']}", method="DELETE"))[0] == 204
    cancelled = await wait_transfer(transfer["id"])
    assert cancelled["state"] == "cancelled" and cancelled["finished_at"]
    assert blobs_on_disk(registry) == []
    assert RegistryClient(registry.url, app_token).collection("lab").containers_list == []


async def test_cancelling_a_pull_removes_the_partial_file(
    api, wait_transfer, workspace, registry, credential, sif, slow_proxy
) -> None:
    RegistryClient(registry.url, credential).push(sif("big", size=6 << 20), "lab/big:v1")
    await _point_extension_at(api, slow_proxy.url)
    _, transfer = await api("transfers", method="POST", body={"direction": "pull", "ref": "lab/big:v1"})
    await _wait_for_bytes(api, transfer["id"])
    assert any(p.name.endswith(".part") for p in workspace.iterdir())
    await api(f"transfers/{transfer['id']}", method="DELETE")
    assert (await wait_transfer(transfer["id"]))["state"] == "cancelled"
    assert list(workspace.iterdir()) == []


async def _point_extension_at(api, url: str) -> None:
    """Send the extension's traffic through the slow proxy (the same registry, so the same credential)."""
    from jupyter_server.serverapp import ServerApp

    extension = (
        ServerApp.instance().extension_manager.extensions["sregistry_jupyter"].extension_points["sregistry_jupyter"].app
    )
    extension.registry_url = url
    extension._client = None
    _, me = await api("whoami")
    assert me["user"]["name"] == "alice"


async def _wait_for_bytes(api, transfer_id: str) -> None:
    import asyncio

    for _ in range(400):
        _, transfer = await api(f"transfers/{transfer_id}")
        if transfer["bytes_done"] > 0 and transfer["state"] == "running":
            assert transfer["rate"] >= 0
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"no bytes moved: {transfer}")


def test_nothing_here_imports_the_registry_server() -> None:
    import subprocess
    import sys

    check = (
        "import sys\n"
        "import sregistry_jupyter.extension, sregistry_jupyter.client\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic', 'psycopg'}),"
        " 'sregistry_jupyter.registry' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60, env=os.environ)
    assert result.stdout.strip() == "[] False", result.stderr
