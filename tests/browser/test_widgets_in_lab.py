"""The widgets rendered in a real JupyterLab and Notebook 7, in Debian's Chromium driven by playwright.

The notebook is run from the browser (Run All), so the widgets go through a real kernel, the real
ipywidgets and plotly front ends, and the registry behind them. Screenshots are written to
``$SREGISTRY_SCREENSHOTS`` (default: the test's temporary folder) for people to look at.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Page

from sregistry_jupyter.client import RegistryClient
from tests.chromium import launched
from tests.conftest import free_port, terminate, wait_until_serving

CELLS = [
    """from sregistry_jupyter.widgets import CollectionBrowser
browser = CollectionBrowser()
browser.background.wait()
browser.collections.value = "lab"; browser.background.wait()
browser.containers.value = "tools"; browser.background.wait()
browser.tags.value = "v1"; browser.background.wait()
browser""",
    """from sregistry_jupyter.widgets import PushWidget
PushWidget(root=".")""",
    """from sregistry_jupyter.widgets import ShareWidget
share = ShareWidget(ref="lab/tools:v1")
share""",
    """from sregistry_jupyter.widgets import RegistryPlots
RegistryPlots()""",
]


@pytest.fixture
def lab(registry, sif, tmp_path: Path) -> Iterator[tuple[str, str]]:
    token = registry.add_user("alice")
    registry.add_user("bob")
    admin = registry.client(registry.add_user("root", admin=True))
    admin.post("/api/v1/teams", json={"name": "lab-team"})
    for name in ("alice", "bob"):
        admin.post("/api/v1/teams/lab-team/members", json={"user": name})
    with RegistryClient(registry.url, token) as client:
        client.push(sif("tools", size=3 << 20), "lab/tools:v1", tags=["latest"])
        client.push(sif("python", size=1 << 20, seed=2), "lab/python:3.12")
        client.push(sif("stats", size=2 << 20, seed=3), "genomics/stats:v2")
        client.pull("lab/tools:v1", tmp_path / "pulled.sif")
    work = tmp_path / "work"
    sif("analysis", folder=work / "images")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(code) for code in CELLS]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(notebook, work / "widgets.ipynb")
    port, lab_token = free_port(), secrets.token_hex(16)
    log = tmp_path / "lab.log"
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    env = {
        **os.environ,
        "SREGISTRY_URL": registry.url,
        "SREGISTRY_TOKEN": token,
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
    }
    env.pop("JUPYTERHUB_API_TOKEN", None)
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                f"--IdentityProvider.token={lab_token}",
                f"--ServerApp.root_dir={work}",
                "--allow-root",
                "--no-browser",
                "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=work,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, f"{url}/api/status?token={lab_token}", log, "JupyterLab", 60)
        yield url, lab_token
    finally:
        terminate(process, 20)


def run_all(page: Page, url: str, shots: Path, name: str) -> None:
    """Open the notebook at ``url``, run every cell from the keyboard and wait for the widgets to fill in."""
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    try:
        choose_kernel = page.locator(".jp-Dialog button:has-text('Select')")
        page.wait_for_timeout(5000)
        if choose_kernel.count():  # the front end may ask which kernel to start for a new notebook
            choose_kernel.click()
        page.locator(".jp-Cell").first.click()
        for _ in CELLS:
            page.keyboard.press("Shift+Enter")
            page.wait_for_timeout(300)
        page.wait_for_selector("option:has-text('genomics')", state="attached", timeout=90_000)
        page.wait_for_selector("text=Definition file", timeout=60_000)
        page.wait_for_selector(".js-plotly-plot .treemap", timeout=90_000)
        page.wait_for_selector("select option:has-text('bob')", state="attached", timeout=60_000)
        page.wait_for_timeout(1000)
    except Exception:
        page.screenshot(path=str(shots / f"failure-{name}.png"))  # what the page showed when it gave up
        raise
    stderr = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert stderr.count() == 0, stderr.all_inner_texts()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_widgets_render_in_jupyterlab_and_notebook_7(lab: tuple[str, str], tmp_path: Path) -> None:
    base, token = lab
    shots = Path(os.environ.get("SREGISTRY_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    names = ["browser", "push", "share", "plots"]
    with launched() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        run_all(page, f"{base}/lab/tree/widgets.ipynb?token={token}", shots, "lab")
        outputs = page.locator(".jp-CodeCell .jp-OutputArea")
        assert outputs.count() >= len(names)
        for index, name in enumerate(names):
            outputs.nth(index).scroll_into_view_if_needed()
            outputs.nth(index).screenshot(path=str(shots / f"widget-{name}.png"))
        outputs.nth(3).locator("button:has-text('Storage')").click()
        page.wait_for_selector(".js-plotly-plot .barlayer", timeout=30_000)
        outputs.nth(3).screenshot(path=str(shots / "widget-plots-storage.png"))
        outputs.nth(1).locator("button:has-text('Push')").click()
        page.wait_for_selector("text=Pushed genomics/analysis", timeout=60_000)
        outputs.nth(1).screenshot(path=str(shots / "widget-push-done.png"))
        page.screenshot(path=str(shots / "notebook.png"))

        browser_text = outputs.nth(0).inner_text()
        assert "alice@example.org" in browser_text and "sha256." in browser_text
        assert "images/analysis.sif" in outputs.nth(1).inner_html()
        assert "Make link" in outputs.nth(2).inner_text()
        assert outputs.nth(3).locator(".js-plotly-plot").count() == 1

        assert errors == [], errors
        classic = browser.new_page(viewport={"width": 1400, "height": 1000})
        classic_errors: list[str] = []
        classic.on("pageerror", lambda error: classic_errors.append(str(error)))
        run_all(classic, f"{base}/notebooks/widgets.ipynb?token={token}", shots, "notebook7")
        classic.screenshot(path=str(shots / "notebook7.png"))
        assert "alice@example.org" in classic.locator(".jp-CodeCell .jp-OutputArea").nth(0).inner_text()
        # Notebook 7's own page logs errors of plugins it lacks (no file browser there); none may be ours.
        ours = ("widget", "plotly", "sregistry")
        assert [e for e in classic_errors if any(word in e.lower() for word in ours)] == [], classic_errors
    assert all((shots / f"widget-{n}.png").stat().st_size > 5000 for n in names)
