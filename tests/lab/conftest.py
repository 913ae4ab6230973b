"""A real JupyterLab with the package installed, in front of a live, seeded registry, driven by Debian's
Chromium through playwright.

The registry runs in a thread (SQLite and PostgreSQL, once each per module); JupyterLab runs as a
subprocess on a free loopback port, with the person's registry token in ``SREGISTRY_TOKEN`` as in a
standalone Jupyter server, and is stopped by its PID. Settings and workspaces live in temporary
folders, so the panel starts the same way every time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.chromium import launched
from tests.conftest import (
    LiveRegistry,
    free_port,
    open_context,
    pg_database,
    start_in_thread,
    terminate,
    wait_until_serving,
)
from tests.gotools import build_go_program
from tests.lab.seed import Seeded, seed

LAB_TOKEN = "lab-browser-test-token"
SCREENSHOT_DIR_VARIABLE = "SREGISTRY_SCREENSHOT_DIR"
# Settings every test starts from: no news prompt over the panel.
USER_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"}}


@dataclass
class LabServer:
    url: str
    workspace: Path
    settings: Path
    registry: LiveRegistry
    seeded: Seeded

    def api(self, person: str = "alice") -> httpx.Client:
        """The registry's native API as ``person``, to check what the panel did."""
        return self.registry.client(self.seeded.tokens[person])


@pytest.fixture(scope="session")
def mksif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_go_program("mksif", tmp_path_factory.mktemp("gobin"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded_registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mksif: Path
) -> Iterator[tuple[LiveRegistry, Seeded]]:
    root = tmp_path_factory.mktemp(f"registry-{request.param}")
    databases = pg_database() if request.param == "postgresql" else None
    db_url = next(databases) if databases else f"sqlite:///{root / 'registry.db'}"
    context = open_context(db_url, root / "data")
    url, stop = start_in_thread(context)
    live = LiveRegistry(url, context, root / "data", db_url)
    try:
        yield live, seed(live, mksif, root / "sifs")
    finally:
        for client in live.clients:
            client.close()
        stop()
        context.engine.dispose()
        if databases:
            databases.close()


@pytest.fixture(scope="module")
def lab(seeded_registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    registry, seeded = seeded_registry
    root = tmp_path_factory.mktemp("lab")
    workspace, settings, workspaces = root / "workspace", root / "settings", root / "workspaces"
    for folder in (workspace, settings, workspaces):
        folder.mkdir()
    for name, values in USER_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {
        **os.environ,
        "SREGISTRY_URL": registry.url,
        "SREGISTRY_TOKEN": seeded.tokens["alice"],
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(workspaces),
    }
    env.pop("JUPYTERHUB_API_TOKEN", None)
    port = free_port()
    log = root / "lab.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={port}",
                "--allow-root",
                f"--IdentityProvider.token={LAB_TOKEN}",
                "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                f"--ServerApp.root_dir={workspace}",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, f"{url}/api/status?token={LAB_TOKEN}", log, "JupyterLab")
        whoami = httpx.get(f"{url}/sregistry/api/whoami", params={"token": LAB_TOKEN}, timeout=30)
        assert whoami.status_code == 200, f"the sregistry server extension did not answer:\n{log.read_text()}"
        yield LabServer(url, workspace, settings, registry, seeded)
    finally:
        terminate(process, 15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as chromium:
        yield chromium


@dataclass
class LabPage:
    """A browser tab on JupyterLab that records what the console says."""

    page: Page
    lab: LabServer
    console_errors: list[str] = field(default_factory=list)
    expected_failures: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        # The browser logs every refused request; a test that provokes one says which URL it expects.
        if message.text.startswith("Failed to load resource") and any(
            path in message.location.get("url", "") for path in self.expected_failures
        ):
            return
        self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    @property
    def panel(self):
        return self.page.locator("#sregistry-panel")

    def open_panel(self) -> None:
        self.page.locator('.jp-SideBar [data-id="sregistry-panel"]').click()
        self.panel.locator(".jp-SregistryList-item").first.wait_for()

    def open_file_browser(self) -> None:
        if not self.page.locator("#filebrowser").is_visible():
            self.page.locator('.jp-SideBar [data-id="filebrowser"]').click()

    def open_folder(self, name: str) -> None:
        """Go into a folder of the workspace root that the test has just made."""
        self.open_file_browser()
        self.page.locator('#filebrowser [data-command="filebrowser:refresh"]').click()
        self.page.locator(".jp-DirListing-item", has_text=name).dblclick()
        self.page.locator(".jp-BreadCrumbs", has_text=name).wait_for()

    def run_from_palette(self, label: str) -> None:
        """Run a command from the command palette, found by typing its label."""
        search = self.page.locator("#modal-command-palette input")
        for _ in range(10):
            # The shortcut works once the palette's plugin is up, which may be after the first paint.
            self.page.keyboard.press("Control+Shift+C")
            try:
                search.wait_for(state="visible", timeout=1000)
                break
            except PlaywrightTimeoutError:
                continue
        search.fill(label)
        items = self.page.locator("#modal-command-palette .lm-CommandPalette-item")
        items.filter(has=self.page.get_by_text(label, exact=True)).first.click()
        # The palette gives the focus back to where it was when it closes; wait for that before going on.
        self.page.locator("#modal-command-palette").wait_for(state="hidden")

    def screenshot(self, name: str, tmp_path: Path, *, sidebar_only: bool = False) -> Path:
        """Save a PNG of the page (or of the left part with the sidebar) for people to look at; also into
        $SREGISTRY_SCREENSHOT_DIR when set, which is how docs/screenshots is made."""
        path = tmp_path / f"{name}.png"
        clip = {"x": 0, "y": 0, "width": 560, "height": 800} if sidebar_only else None
        self.page.screenshot(path=str(path), clip=clip)
        target = os.environ.get(SCREENSHOT_DIR_VARIABLE)
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(target) / path.name)
        assert path.stat().st_size > 10_000, "the screenshot is blank"
        return path


@pytest.fixture
def lab_page(browser: Browser, lab: LabServer) -> Iterator[LabPage]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    ui = LabPage(page, lab)
    page.on("console", ui.on_console)
    page.on("pageerror", lambda error: ui.console_errors.append(f"uncaught: {error.stack}"))
    page.goto(f"{lab.url}/lab?reset&token={LAB_TOKEN}")
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    page.wait_for_selector('.jp-SideBar [data-id="sregistry-panel"]', timeout=30_000)
    # A fresh workspace opens a Launcher, which takes the focus once it is up; wait for that so that the
    # test's own focus and typing are not taken away.
    page.wait_for_function("document.activeElement?.closest('.jp-Launcher') != null", timeout=30_000)
    try:
        yield ui
    finally:
        context.close()
