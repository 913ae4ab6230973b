"""Driving the registry's web pages in Debian's Chromium, the way a person would, with the checks every
page must pass wherever a test goes:

- axe-core (npm, installed by ``run-tests`` into ``.cache/npm``) runs in every page once it has loaded
  (``watch_accessibility``), and again on demand at desktop width and at 375 px (``WebPage.check``); a
  serious or critical violation fails the test;
- nothing is logged to the console as an error, no script throws, and the page asks nothing of any host
  but the registry (every other request is refused and reported);
- each page can be saved as a screenshot into ``$SREGISTRY_SCREENSHOT_DIR`` (how ``docs/screenshots`` is made).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, Response, Route

from tests.registry.test_sign_in import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
AXE_SCRIPT = ROOT / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOT_DIR_VARIABLE = "SREGISTRY_SCREENSHOT_DIR"
BLOCKING_IMPACTS = ("serious", "critical")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}


# Runs axe once each page has loaded and reports what it finds to the test (``watch_accessibility``);
# ``window.__axeDone`` lets a later check wait for it, since axe runs one audit at a time.
AUTORUN = """
window.addEventListener("load", () => {
  window.__axeDone = new Promise((resolve) => setTimeout(resolve, 50))
    .then(() => window.axe.run(document, {resultTypes: ["violations"]}))
    .then((result) => window.__reportAxe(location.href, result.violations
      .filter((v) => %s.includes(v.impact))
      .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" "))}))))
    .catch((error) => window.__reportAxe(location.href, [{id: "axe-failed", impact: "critical", help: String(error)}]));
});
"""


def axe_source() -> str:
    assert AXE_SCRIPT.is_file(), f"axe-core is missing at {AXE_SCRIPT}: run ./run-tests once to install it"
    return AXE_SCRIPT.read_text()


def watch_accessibility(context: BrowserContext, found: list[str]) -> None:
    """Run axe-core in every page ``context`` loads, once it has loaded, and add each serious or critical
    violation to ``found``. The script is injected by the DevTools protocol, which the page's
    Content-Security-Policy does not govern, so the page is audited under the policy it is served with."""

    def report(source: dict, url: str, violations: list[dict]) -> None:
        found.extend(f"{url}: {violation}" for violation in violations)

    context.expose_binding("__reportAxe", report)
    context.add_init_script(script=axe_source() + AUTORUN % json.dumps(list(BLOCKING_IMPACTS)))


def settle_accessibility(page: Page) -> None:
    """Wait for the audit of the page that is open to finish, so that its findings are in."""
    if not page.is_closed():
        page.evaluate("() => window.__axeDone")


@dataclass
class WebPage:
    """A browser tab on the registry that records console errors and requests to other hosts."""

    page: Page
    base_url: str
    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    expected_failures: list[str] = field(default_factory=list)
    inaccessible: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        # Chromium logs each refused request; a test that provokes one says which path it expects.
        url = message.location.get("url", "")
        if message.text.startswith("Failed to load resource") and any(p in url for p in self.expected_failures):
            return
        self.console_errors.append(f"{message.text} ({url})")

    def route(self, route: Route, request: Request) -> None:
        host = urlsplit(request.url).netloc
        if request.url.startswith(("data:", "blob:")) or host == urlsplit(self.base_url).netloc:
            route.continue_()
            return
        self.outside_requests.append(request.url)
        route.abort()

    def goto(self, path: str, *, status: int = 200) -> Response:
        """Open ``path`` and wait for it to settle; the answer must have ``status``."""
        self.expect_status(path, status)
        response = self.page.goto(self.base_url + path, wait_until="networkidle")
        return self.checked(response, status)

    def expect_status(self, url: str, status: int) -> None:
        """A refusal the test provokes on purpose is logged by Chromium; it is not an error of the page."""
        if status >= 400:
            self.expected_failures.append(urlsplit(url).path)

    def checked(self, response: Response | None, status: int) -> Response:
        assert response is not None
        assert response.status == status, f"{response.url}: {response.status}\n{response.text()[:2000]}"
        return response

    def violations(self) -> list[dict]:
        """axe-core's serious and critical findings on the page as it is now."""
        found = self.page.evaluate(
            """async () => {
                await window.__axeDone;
                const result = await window.axe.run(document, {resultTypes: ["violations"]});
                return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}));
            }"""
        )
        return [v for v in found if v["impact"] in BLOCKING_IMPACTS]

    def check(self, name: str | None = None) -> None:
        """The page passes axe at desktop width and at 375 px, where it also fits without scrolling
        sideways; when ``name`` is given, a screenshot of each width is kept."""
        viewport = self.page.viewport_size or DESKTOP
        for size, suffix in ((DESKTOP, ""), (PHONE, "-375")):
            self.page.set_viewport_size(size)
            self.page.wait_for_timeout(150)
            found = self.violations()
            assert not found, f"{self.page.url} at {size['width']} px: {found}"
            if size is PHONE:
                overflow = self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 1, f"{self.page.url} is {overflow} px wider than a 375 px screen"
            if name:
                self.screenshot(name + suffix)
        self.page.set_viewport_size(viewport)
        self.assert_clean()

    def screenshot(self, name: str) -> Path:
        target = Path(os.environ.get(SCREENSHOT_DIR_VARIABLE) or (ROOT / ".cache" / "screenshots"))
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 5_000, f"the screenshot {path} is blank"
        return path

    def assert_clean(self) -> None:
        settle_accessibility(self.page)
        assert not self.inaccessible, self.inaccessible
        assert not self.console_errors, self.console_errors
        assert not self.outside_requests, f"requests left the machine: {self.outside_requests}"

    def assert_clean_apart_from(self, path: str) -> None:
        """As ``assert_clean``, with the accessibility findings on the third-party page at ``path`` set aside."""
        settle_accessibility(self.page)
        self.inaccessible[:] = [found for found in self.inaccessible if urlsplit(found.split(": ", 1)[0]).path != path]
        self.assert_clean()

    def sign_in(self, name: str, password: str = PASSWORD) -> None:
        """Sign in with the login form, as a person does."""
        self.goto("/login")
        self.page.get_by_label("User name").fill(name)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state("networkidle")
        assert "/login" not in self.page.url, f"{name} could not sign in: {self.page.content()[:2000]}"

    def submit(self, button: str, *, status: int = 200, within: str | None = None) -> Response:
        """Press the button named ``button`` (inside the element ``within``), wait for the page it leads to
        and check that page's status."""
        scope = self.page.locator(within) if within else self.page
        target = scope.get_by_role("button", name=button, exact=True)
        action = target.evaluate("button => button.form.action")
        self.expect_status(action, status)
        with self.page.expect_navigation(wait_until="networkidle") as navigation:
            target.click()
        return self.checked(navigation.value, status)

    def text_of(self, selector: str) -> str:
        return re.sub(r"\s+", " ", self.page.locator(selector).inner_text()).strip()


@contextmanager
def open_page(browser: Browser, base_url: str) -> Iterator[WebPage]:
    """A fresh browser context (no cookies) with one tab on the registry at ``base_url``."""
    context = browser.new_context(viewport=DESKTOP, base_url=base_url)
    page = context.new_page()
    web = WebPage(page, base_url)
    watch_accessibility(context, web.inaccessible)
    context.route("**/*", web.route)
    page.on("console", web.on_console)
    page.on("pageerror", lambda error: web.console_errors.append(f"uncaught: {error}"))
    try:
        yield web
        web.assert_clean()
    finally:
        context.close()
