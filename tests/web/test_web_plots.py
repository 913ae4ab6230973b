"""The usage page: plotly.js from the installed plotly package (never a CDN) draws the treemap, storage and
activity figures of ``sregistry_jupyter.figures``, over only what the viewer may see."""

from __future__ import annotations

import json
import re
from pathlib import Path

import plotly

from sregistry_jupyter import figures
from tests.registry.test_sign_in import add_person
from tests.registry.test_transfer import IMAGES, push

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def figure_json(html: str, name: str) -> dict:
    found = re.search(rf'<script type="application/json" id="figure-{name}">(.*?)</script>', html, re.S)
    assert found, f"no {name} figure on the page"
    return json.loads(found.group(1))


def seed(registry) -> None:
    alice = registry.client(registry.add_user("alice"))
    bob = registry.client(registry.add_user("bob"))
    assert alice.post("/api/v1/collections", json={"name": "lab"}).status_code == 201
    assert bob.post("/api/v1/collections", json={"name": "hidden-lab", "private": True}).status_code == 201
    assert push(alice, b"x" * 3000, container="tool").status_code == 201
    assert push(alice, b"y" * 1000, container="notes").status_code == 201
    assert push(bob, b"secret bytes", collection="hidden-lab", container="secret-tool").status_code == 201
    for _ in range(3):
        assert alice.get(IMAGES.format(c="lab", n="tool") + "/latest/file").status_code == 200
    registry.flush()


def test_the_figures_are_the_shared_definitions_over_visible_collections(registry):
    seed(registry)
    anonymous = registry.client()
    page = anonymous.get("/plots")
    assert page.status_code == 200
    treemap = figure_json(page.text, "treemap")["data"][0]
    assert treemap["type"] == "treemap"
    assert set(treemap["ids"]) == {"lab/tool", "lab/notes", "lab", figures.ROOT_ID}
    assert "hidden-lab" not in page.text and "secret-tool" not in page.text
    storage = figure_json(page.text, "storage")["data"][0]
    assert storage["y"] == ["lab"] and storage["x"] == [4000]
    activity = figure_json(page.text, "activity")["data"]
    assert [trace["name"] for trace in activity] == ["pushes", "pulls"]
    assert sum(activity[0]["y"]) == 2 and sum(activity[1]["y"]) == 3

    # The same figure the widgets draw from the same numbers.
    stats = anonymous.get("/api/v1/stats").json()
    expected = figures.treemap(stats["containers"]).to_plotly_json()["data"][0]
    assert treemap["values"] == expected["values"] and treemap["marker"]["colors"] == expected["marker"]["colors"]

    owner = registry.client(registry.add_user("bob"))
    assert owner.get("/api/v1/stats").json()["totals"]["collections"] == 2
    aged = anonymous.get("/plots", params={"color": "age", "days": "7"})
    assert figure_json(aged.text, "treemap")["layout"]["title"]["text"] == "Registry by size, coloured by age"
    assert len(figure_json(aged.text, "activity")["data"][0]["x"]) == 7
    assert anonymous.get("/plots", params={"color": "<x>", "days": "-1"}).status_code == 200


def test_plotly_js_is_the_installed_packages_own(registry):
    answer = registry.client().get("/vendor/plotly/plotly.min.js")
    assert answer.status_code == 200
    assert answer.content == PLOTLY_JS.read_bytes()
    assert answer.headers["Content-Type"].startswith(("application/javascript", "text/javascript"))
    assert registry.client().get("/vendor/plotly/../__init__.py").status_code == 404


def test_the_treemap_draws_in_a_browser_with_only_what_the_viewer_may_see(registry, fresh_tab):
    seed(registry)
    add_person(registry, "carol")
    carol = fresh_tab()
    scripts = []
    carol.page.on("request", lambda request: scripts.append(request.url) if request.resource_type == "script" else None)
    carol.sign_in("carol")
    carol.page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    carol.page.wait_for_url("**/plots")
    treemap = carol.page.locator("#treemap svg.main-svg").first
    treemap.wait_for()
    labels = carol.page.locator("#treemap g.slice text").all_text_contents()
    assert any("lab" in label for label in labels) and any("tool" in label for label in labels)
    assert not any("hidden" in label or "secret" in label for label in labels)
    assert carol.page.locator("#storage svg.main-svg").count() >= 1
    assert carol.page.locator("#activity svg.main-svg").count() >= 1
    assert f"{registry.url}/vendor/plotly/plotly.min.js" in scripts
    carol.check("usage")

    carol.page.get_by_role("link", name="by age").click()
    carol.page.wait_for_url("**/plots?color=age*")
    carol.page.locator("#treemap svg.main-svg").first.wait_for()
    assert carol.page.get_by_role("link", name="by age").get_attribute("aria-current") == "true"
    assert carol.page.locator("#treemap .colorbar .cbtitle").text_content() == "days old"
