"""The example notebooks, executed top to bottom by nbclient in a real kernel against a registry with data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from sregistry_jupyter.client import RegistryClient
from tests.conftest import wait_for

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
PLOTLY = "application/vnd.plotly.v1+json"
WIDGET = "application/vnd.jupyter.widget-view+json"


def execute(name: str, folder: Path, env: dict[str, str]) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel inherits the environment, as it does in a Jupyter server
    try:
        NotebookClient(
            notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return notebook


def text_of(cell: Any) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def outputs_with(notebook: nbformat.NotebookNode, mime: str) -> list[dict[str, Any]]:
    return [o["data"][mime] for c in notebook.cells for o in c.get("outputs", []) if mime in o.get("data", {})]


@pytest.fixture
def populated(registry, sif) -> dict[str, str]:
    """A registry with a team, two people, and images pushed and pulled by them."""
    alice, bob = registry.add_user("alice"), registry.add_user("bob")
    admin_token = registry.add_user("root", admin=True)
    admin = registry.client(admin_token)
    admin.post("/api/v1/teams", json={"name": "lab-team"})
    for name in ("alice", "bob"):
        admin.post("/api/v1/teams/lab-team/members", json={"user": name})
    with RegistryClient(registry.url, bob) as client:
        pushed = client.push(sif("bobs", size=200_000, seed=5), "bob-lab/analysis:v1")
        client.pull("bob-lab/analysis:v1", sif("x").parent / "bobs-copy.sif")
        assert wait_for(lambda: client.stats().containers[0].downloads == 1)  # pull counts may be written behind
    return {"url": registry.url, "alice": alice, "bob": bob, "root": admin_token, "size": pushed.size}


def test_the_tour_runs_top_to_bottom(populated, sif, tmp_path: Path) -> None:
    folder = tmp_path / "workspace"
    image = sif("tools", size=300_000, folder=folder)
    notebook = execute("tour.ipynb", folder, {"SREGISTRY_URL": populated["url"], "SREGISTRY_TOKEN": populated["alice"]})
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert "as alice" in text_of(cells[0])
    assert "bob-lab" in text_of(cells[1])
    assert outputs_with(notebook, WIDGET)  # the browser widget was displayed
    assert "pushed alice-tour/tools:tour: sha256." in text_of(cells[3])
    assert "architecture: amd64" in text_of(cells[4]) and "alpine" in text_of(cells[4])
    assert "verified" in text_of(cells[5]) and (folder / "pulled" / "tools_tour.sif").read_bytes() == image.read_bytes()
    assert "bob may now see and pull alice-tour" in text_of(cells[6]) and "/shares/" in text_of(cells[6])
    treemap, activity = outputs_with(notebook, PLOTLY)
    assert set(treemap["data"][0]["ids"]) >= {"alice-tour", "alice-tour/tools"}
    assert activity["data"][0]["name"] == "pushes" and len(activity["data"][0]["x"]) == 14
    with RegistryClient(populated["url"], populated["bob"]) as bob:
        assert bob.image("alice-tour/tools:latest").size == image.stat().st_size


def test_the_admin_notebook_reports_usage(populated, tmp_path: Path) -> None:
    folder = tmp_path / "admin"
    folder.mkdir()
    notebook = execute(
        "lab-admin.ipynb", folder, {"SREGISTRY_URL": populated["url"], "SREGISTRY_TOKEN": populated["root"]}
    )
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert "root (admin)" in text_of(cells[0]) and "1 collections, 1 containers, 1 images" in text_of(cells[0])
    storage, treemap, activity = outputs_with(notebook, PLOTLY)
    assert storage["data"][0]["y"] == ["bob-lab"] and storage["data"][0]["x"] == [populated["size"]]
    assert set(treemap["data"][0]["ids"]) == {"registry:", "bob-lab", "bob-lab/analysis"}
    assert "bob-lab/analysis" in text_of(cells[3]) and "1 pulls" in text_of(cells[3])
    assert "busiest day" in text_of(cells[5]) and activity["data"][1]["y"][-1] == 1
    assert list(folder.iterdir()) == []  # reading usage writes nothing
