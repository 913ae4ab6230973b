"""Fixtures for the web pages' browser tests: one Chromium for the session, a registry with local accounts
(on SQLite and PostgreSQL, from ``tests/conftest.py``), and fresh tabs on it (``tests/web/browsing.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from playwright.sync_api import Browser, sync_playwright

from sregistry_jupyter.registry.auth.local import LocalAuthenticator
from tests.web.browsing import CHROMIUM, CHROMIUM_ARGS, WebPage, open_page


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def registry_settings() -> dict:
    return {"authenticator": LocalAuthenticator(), "name": "Tacosaurus Computing Center"}


@pytest.fixture
def tab(chromium: Browser, registry) -> Iterator[Callable[[], WebPage]]:
    """Opens a new, signed-out browser tab on the registry each time it is called."""
    with ExitStack() as stack:
        yield lambda: stack.enter_context(open_page(chromium, registry.url))
