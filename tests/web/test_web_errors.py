"""Errors for people and for programs: a browser gets 404, 403 and 500 pages in the site's layout, while
API clients asking the same things keep their protocol's JSON envelope."""

from __future__ import annotations

import pytest

from sregistry_jupyter.registry.handlers import docs
from sregistry_jupyter.registry.handlers.pages.errors import wants_html
from sregistry_jupyter.registry.services import stats
from tests.registry.test_sign_in import add_person, signed_in

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (BROWSER_ACCEPT, True),
        ("text/html", True),
        ("application/json", False),
        ("application/json, text/html", False),
        ("*/*", False),
        ("", False),
    ],
)
def test_html_is_for_whoever_prefers_it(accept, html):
    assert wants_html(accept) is html


def is_error_page(response, status: int, title: str) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    assert f"<h1>{title}</h1>" in response.text
    assert 'class="topbar"' in response.text  # the site's layout, with its navigation
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_unknown_addresses_are_pages_for_browsers_and_json_for_programs(registry):
    client = registry.client()
    page = client.get("/no/such/page", headers={"Accept": BROWSER_ACCEPT})
    is_error_page(page, 404, "Not found")
    assert "There is no page at this address" in page.text

    for accept in ("application/json", "*/*"):
        answer = client.get("/no/such/page", headers={"Accept": accept})
        assert answer.status_code == 404
        assert answer.json() == {"code": "NOT_FOUND", "message": "no such endpoint"}

    # The APIs keep their envelopes whatever the Accept header says.
    native = client.get("/api/v1/collections/missing", headers={"Accept": BROWSER_ACCEPT})
    assert native.status_code == 404 and native.json()["code"] == "NOT_FOUND"
    unknown = client.get("/api/v1/nothing-here", headers={"Accept": BROWSER_ACCEPT})
    assert unknown.status_code == 404 and unknown.json()["code"] == "NOT_FOUND"
    library = client.get("/v1/containers/missing/lab/tool", headers={"Accept": BROWSER_ACCEPT})
    assert library.status_code == 404 and set(library.json()["error"]) == {"code", "message"}
    shub = client.get("/api/collection/missing", headers={"Accept": BROWSER_ACCEPT})
    assert shub.status_code == 404 and "detail" in shub.json()
    unmatched = client.get("/v1/nothing/here", headers={"Accept": BROWSER_ACCEPT})
    assert unmatched.status_code == 404 and unmatched.headers["Content-Type"] == "application/json"


def test_refusals_are_pages_for_browsers_and_json_for_programs(registry):
    add_person(registry, "alice")
    browser = signed_in(registry, "alice")
    is_error_page(browser.get("/staff/users", headers={"Accept": BROWSER_ACCEPT}), 403, "Not allowed")
    forged = browser.post("/teams", data={"_xsrf": "forged", "name": "x"})
    is_error_page(forged, 403, "Not allowed")

    token = registry.client(registry.add_user("alice", scope="read"))
    refused = token.post("/api/v1/collections", json={"name": "lab"}, headers={"Accept": BROWSER_ACCEPT})
    assert refused.status_code == 403 and refused.json()["code"] == "DENIED"


def test_failures_are_pages_for_browsers_and_json_for_programs(registry, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret detail of a failure")

    monkeypatch.setattr(docs, "document", broken)
    monkeypatch.setattr(stats, "registry_stats", broken)
    client = registry.client()
    page = client.get("/api", headers={"Accept": BROWSER_ACCEPT})
    is_error_page(page, 500, "Something went wrong")
    assert "secret detail" not in page.text and "Traceback" not in page.text

    answer = client.get("/api/v1/stats", headers={"Accept": BROWSER_ACCEPT})
    assert answer.status_code == 500
    assert answer.json() == {"code": "INTERNAL", "message": "internal error; the registry log has details"}


def test_the_error_pages_in_a_browser(registry, fresh_tab):
    add_person(registry, "alice")
    visitor = fresh_tab()
    visitor.goto("/collections/nothing/like/this", status=404)
    assert visitor.page.title().startswith("404")
    assert "There is no page at this address" in visitor.text_of("main")
    visitor.page.get_by_role("link", name="Back to the registry").click()
    visitor.page.wait_for_url(registry.url + "/")
    visitor.goto("/no-such-page", status=404)
    visitor.check("error-404")
