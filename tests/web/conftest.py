"""The registry's web pages in Debian's Chromium (playwright, no browser download), in front of a live,
seeded registry on SQLite and on PostgreSQL.

Every page a test opens is watched: a console error, an uncaught exception or a request to anywhere but
the registry fails the test. People sign in with passwords through the login page, as they would.

Who is who: alice owns the public ``biocontainers`` and the private ``lab-private``; she, bob and carol
are in the open team ``imaging`` (carol owns it); dave is in no team; erin owns ``erin-tools``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request

from sregistry_jupyter.registry.auth import passwords
from sregistry_jupyter.registry.auth.local import LocalAuthenticator
from sregistry_jupyter.registry.orm import utcnow
from sregistry_jupyter.registry.services import users
from tests.chromium import launched
from tests.conftest import LiveRegistry, open_context, pg_database, start_in_thread
from tests.gotools import make_sif
from tests.jupyter_support import mksif  # noqa: F401
from tests.web.browsing import WebPage, open_page, settle_accessibility, watch_accessibility

PASSWORD = "correct horse battery"
SCREENSHOT_DIR_VARIABLE = "SREGISTRY_SCREENSHOT_DIR"
API = "/api/v1"
DEFFILE = """Bootstrap: docker
From: alpine:3.20

%post
    apk add --no-cache samtools <b>bold</b>

%labels
    Maintainer alice
"""
PEOPLE = ("alice", "bob", "carol", "dave", "erin")


@dataclass
class Site:
    """The live registry, the tokens of its people and the SIF files that were pushed."""

    registry: LiveRegistry
    tokens: dict[str, str]
    work: Path
    mksif: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.registry.url

    def api(self, person: str | None = None) -> httpx.Client:
        return self.registry.client(self.tokens[person] if person else None)

    def push(self, person: str, ref: str, path: Path) -> dict:
        name, tag = ref.split(":")
        collection, container = name.split("/")
        data = path.read_bytes()
        response = self.api(person).post(
            f"{API}/collections/{collection}/containers/{container}/images",
            params={"digest": "sha256." + hashlib.sha256(data).hexdigest(), "tag": tag},
            content=data,
        )
        assert response.status_code in (200, 201), response.text
        self.files[ref] = path
        return response.json()

    def sif(self, name: str, **options) -> Path:
        return make_sif(self.mksif, self.work / f"{name}.sif", **options)


def add_people(registry: LiveRegistry) -> dict[str, str]:
    tokens = {}
    for name in PEOPLE:
        with registry.session() as session:
            user = users.create_user(session, name, staff=name == "carol")
            user.password_hash = passwords.hash_password(PASSWORD)
            user.terms_accepted_at = utcnow()
            session.commit()
        tokens[name] = registry.add_user(name)
    return tokens


def seed(site: Site) -> None:
    alice, bob, carol = (site.api(name) for name in ("alice", "bob", "carol"))
    for response in (
        carol.post(f"{API}/teams", json={"name": "imaging", "open": True}),
        alice.post(f"{API}/teams/imaging/join"),
        bob.post(f"{API}/teams/imaging/join"),
    ):
        assert response.status_code in (200, 201, 204), response.text
    assert alice.post(f"{API}/collections", json={"name": "lab-private", "private": True}).status_code == 201
    labels = {"org.label-schema.name": "samtools", "version": "1.19"}
    site.push("alice", "biocontainers/samtools:1.19", site.sif("samtools", deffile=DEFFILE, labels=labels, signed=True))
    site.push("alice", "biocontainers/samtools:latest", site.sif("samtools-2", seed=2, labels=labels))
    site.push("alice", "biocontainers/bwa:0.7.17", site.sif("bwa", seed=3, labels={"org.label-schema.name": "bwa"}))
    site.push("alice", "lab-private/notebook:2026.11", site.sif("notebook", seed=4, deffile=DEFFILE))
    site.push("erin", "erin-tools/fastqc:0.12", site.sif("fastqc", seed=5))
    alice.patch(f"{API}/collections/biocontainers", json={"description": "Bioinformatics tools <em>for all</em>"})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mksif: Path) -> Iterator[Site]:  # noqa: F811
    root = tmp_path_factory.mktemp(f"web-{request.param}")
    databases = pg_database() if request.param == "postgresql" else None
    db_url = next(databases) if databases else f"sqlite:///{root / 'registry.db'}"
    context = open_context(
        db_url, root / "data", authenticator=LocalAuthenticator(), terms_of_service="Be kind to the registry."
    )
    url, stop = start_in_thread(context)
    live = LiveRegistry(url, context, root / "data", db_url)
    work = root / "sifs"
    work.mkdir()
    built = Site(live, add_people(live), work, mksif)
    try:
        seed(built)
        yield built
    finally:
        for client in live.clients:
            client.close()
        stop()
        context.engine.dispose()
        if databases:
            databases.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as chromium:
        yield chromium


@dataclass
class Tab:
    """A browser tab on the registry that records console errors and requests that leave the registry."""

    page: Page
    context: BrowserContext
    site: Site
    console_errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    expected_failures: list[str] = field(default_factory=list)
    inaccessible: list[str] = field(default_factory=list)

    def on_console(self, message) -> None:
        if message.type != "error":
            return
        if message.text.startswith("Failed to load resource") and any(
            path in message.location.get("url", "") for path in self.expected_failures
        ):
            return
        self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    def on_request(self, request: Request) -> None:
        if urlsplit(request.url).netloc != urlsplit(self.site.url).netloc and not request.url.startswith("data:"):
            self.outside.append(request.url)

    def go(self, path: str) -> None:
        self.page.goto(self.site.url + path)

    def sign_in(self, name: str) -> None:
        self.go("/")
        self.page.get_by_role("banner").get_by_role("link", name="Sign in").click()
        self.page.get_by_label("User name").fill(name)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(self.site.url + "/")

    def screenshot(self, name: str, tmp_path: Path, *, full_page: bool = True) -> Path:
        """A PNG of the page for people to look at; also into $SREGISTRY_SCREENSHOT_DIR when that is set,
        which is how docs/screenshots is made."""
        path = tmp_path / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        target = os.environ.get(SCREENSHOT_DIR_VARIABLE)
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(target) / path.name)
        assert path.stat().st_size > 8_000, "the screenshot is blank"
        return path

    def check_clean(self) -> None:
        settle_accessibility(self.page)
        assert not self.inaccessible, f"serious accessibility violations: {self.inaccessible}"
        assert not self.console_errors, self.console_errors
        assert not self.outside, f"requests left the machine: {self.outside}"


def open_tab(browser: Browser, site: Site, *, width: int = 1280, height: int = 900) -> Tab:
    context = browser.new_context(viewport={"width": width, "height": height})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page = context.new_page()
    tab = Tab(page, context, site)
    watch_accessibility(context, tab.inaccessible)
    page.on("console", tab.on_console)
    page.on("pageerror", lambda error: tab.console_errors.append(f"uncaught: {error.stack}"))
    page.on("request", tab.on_request)
    return tab


@pytest.fixture
def tab(browser: Browser, site: Site) -> Iterator[Tab]:
    opened = open_tab(browser, site)
    try:
        yield opened
        opened.check_clean()
    finally:
        opened.context.close()


@pytest.fixture
def phone(browser: Browser, site: Site) -> Iterator[Tab]:
    opened = open_tab(browser, site, width=375, height=740)
    try:
        yield opened
        opened.check_clean()
    finally:
        opened.context.close()


@pytest.fixture
def fresh_tab(browser: Browser, registry: LiveRegistry) -> Iterator[Callable[[], WebPage]]:
    """Opens a new, signed-out tab on a registry of the test's own (``registry``, with local accounts) each
    time it is called, for tests that build the registry they need rather than share the seeded ``site``."""
    with ExitStack() as stack:
        yield lambda: stack.enter_context(open_page(browser, registry.url))


@pytest.fixture
def registry_settings() -> dict:
    return {"authenticator": LocalAuthenticator(), "name": "Tacosaurus Computing Center"}
