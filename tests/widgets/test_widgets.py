"""The widgets, headless (no kernel or browser), driven as a person would, against a live registry."""

from __future__ import annotations

import pytest

from sregistry_jupyter.client import RegistryClient
from sregistry_jupyter.widgets import CollectionBrowser, PushWidget, RegistryPlots, ShareWidget
from sregistry_jupyter.widgets.plots import PLOTLY_MIME
from tests.conftest import free_port
from tests.jupyter_support import DEFFILE


@pytest.fixture
def alice(registry) -> RegistryClient:
    client = RegistryClient(registry.url, registry.add_user("alice"))
    yield client
    client.close()


def test_the_browser_walks_from_collections_to_sif_details(alice, sif) -> None:
    pushed = alice.push(sif("tools"), "lab/tools:v1", tags=["latest"])
    alice.create_collection("zoo")
    browser = CollectionBrowser(alice)
    browser.background.wait()
    assert browser.collections.options == ("lab", "zoo") and "2 collections" in browser.status.value

    browser.query.value = "zo"
    browser.background.wait()
    assert browser.collections.options == ("zoo",)
    browser.query.value = ""
    browser.search_button.click()
    browser.background.wait()
    assert browser.collections.options == ("lab", "zoo")

    seen = []
    browser.observe(lambda change: seen.append(change["new"]), names="selected_image")
    browser.collections.value = "lab"
    browser.background.wait()
    assert browser.selected_collection == "lab" and browser.containers.options == ("tools",)
    browser.containers.value = "tools"
    browser.background.wait()
    assert browser.tags.options == ("latest", "v1")
    browser.tags.value = "v1"
    browser.background.wait()
    assert seen == ["lab/tools:v1"] and browser.image.digest == pushed.digest
    assert pushed.digest in browser.details.value and "alice@example.org" in browser.details.value
    assert "apk add --no-cache python3" in browser.details.value and DEFFILE.splitlines()[0] in browser.details.value
    assert "_model_name" in browser.get_state()


def test_the_browser_shows_errors_instead_of_raising() -> None:
    browser = CollectionBrowser(RegistryClient(f"http://127.0.0.1:{free_port()}", "x"))
    browser.background.wait()
    assert "cannot be reached" in browser.status.value and browser.collections.options == ()


def test_the_push_widget_pushes_a_workspace_file_with_progress(alice, sif, tmp_path, registry) -> None:
    workspace = tmp_path / "work"
    source = sif("analysis", size=2 << 20, folder=workspace / "images")
    (workspace / ".hidden").mkdir()
    sif("secret", folder=workspace / ".hidden")
    alice.create_collection("lab")
    widget = PushWidget(alice, root=workspace)
    widget.background.wait()
    assert widget.file.options == ("images/analysis.sif",) and widget.collection.options == ("lab",)
    assert widget.container.value == "analysis" and widget.collection.value == "lab"

    widget.tags.value = "v1, latest"
    widget.push_button.click()
    widget.background.wait()
    assert widget.result is not None and widget.result.tags == ["latest", "v1"]
    assert widget.progress.value == widget.progress.max == source.stat().st_size
    assert widget.progress.bar_style == "success" and "Pushed lab/analysis" in widget.status.value
    assert alice.image("lab/analysis:v1").digest == widget.result.digest and not widget.push_button.disabled


def test_the_push_widget_reports_a_refusal(alice, sif, tmp_path, registry) -> None:
    RegistryClient(registry.url, registry.add_user("bob")).create_collection("bobs")
    sif("x", folder=tmp_path / "w")
    widget = PushWidget(alice, root=tmp_path / "w")
    widget.background.wait()
    widget.collection.value = "bobs"
    widget.push()
    widget.background.wait()
    assert widget.result is None and "bobs" in widget.status.value and "color:#b91c1c" in widget.status.value
    assert not widget.push_button.disabled


def test_the_share_widget_grants_a_role_and_makes_a_link(alice, sif, registry) -> None:
    alice.push(sif("s"), "lab/tools:v1")
    registry.add_user("bob")
    admin = registry.client(registry.add_user("root", admin=True))
    admin.post("/api/v1/teams", json={"name": "lab-team"})
    for name in ("alice", "bob"):
        admin.post("/api/v1/teams/lab-team/members", json={"user": name})
    widget = ShareWidget(alice, ref="lab/tools:v1")
    widget.background.wait()
    assert widget.collection.options == ("lab",) and widget.teammate.options == ("bob", "root")
    assert "alice (owner)" in widget.members.value

    widget.teammate.value = "bob"
    widget.role.value = "owner"
    widget.share_button.click()
    widget.background.wait()
    assert (widget.member.user, widget.member.role) == ("bob", "owner")
    assert "bob (owner)" in widget.members.value
    assert {(m.user, m.role) for m in alice.members("lab")} == {("alice", "owner"), ("bob", "owner")}

    widget.days.value = 2
    widget.link_button.click()
    widget.background.wait()
    assert widget.link.url in widget.link_html.value and "/shares/" in widget.link.url


def test_the_plots_are_built_from_the_registry_data(alice, sif) -> None:
    alice.push(sif("a", size=300_000), "lab/tools:v1")
    alice.push(sif("b", size=100_000, seed=3), "zoo/cat:v1")
    plots = RegistryPlots(alice, days=14)
    plots.background.wait()
    treemap = plots.figure.data[0]
    assert treemap.type == "treemap" and set(treemap.ids) == {"registry:", "lab", "zoo", "lab/tools", "zoo/cat"}
    assert plots.output.outputs[0]["data"][PLOTLY_MIME]["data"][0]["type"] == "treemap"

    plots.color_by.value = "age"
    assert plots.figure.data[0].marker.colorscale != treemap.marker.colorscale
    assert all("changed 0 days ago" in text for text in plots.figure.data[0].hovertext if "/" in text)
    plots.choice.value = "storage"
    assert list(plots.figure.data[0].y) == ["lab", "zoo"] and plots.color_by.disabled
    plots.choice.value = "activity"
    assert len(plots.figure.data[0].x) == 14 and plots.figure.data[0].y[-1] == 2
