"""The API page: every endpoint of the OpenAPI document the registry serves, with its parameters, and a
"try it" for GETs that answers with the viewer's own session."""

from __future__ import annotations

import json
import re

from sregistry_jupyter.registry.handlers import docs
from sregistry_jupyter.registry.handlers.pages import api_browser
from tests.registry.test_sign_in import add_person

TINY = {
    "openapi": "3.1.0",
    "info": {"title": "Tiny API", "version": "9"},
    "tags": [{"name": "things", "description": "Things <b>here</b>."}],
    "components": {
        "parameters": {"Thing": {"name": "thing", "in": "path", "required": True, "schema": {"type": "string"}}}
    },
    "paths": {
        "/api/v1/things/{thing}": {
            "parameters": [{"$ref": "#/components/parameters/Thing"}],
            "get": {"tags": ["things"], "summary": "One thing", "responses": {"200": {"description": "The thing."}}},
        }
    },
}


def operations(document: dict) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in api_browser.METHODS
        if method in item
    ]


def test_the_page_lists_every_operation_of_the_served_document(registry):
    document = registry.client().get("/api/openapi.json").json()
    page = registry.client().get("/api", headers={"Accept": "text/html"})
    assert page.status_code == 200
    shown = re.findall(
        r'<span class="method method-[a-z]+">([A-Z]+)</span> <code class="path">([^<]+)</code>', page.text
    )
    assert shown and sorted(shown) == sorted(operations(document))
    # Path parameters declared once for a path are offered on each of its operations.
    assert 'data-path="/api/v1/collections/{collection}"' in page.text
    assert 'name="collection" data-in="path" required' in page.text


def test_the_page_follows_whatever_document_the_registry_serves(registry, monkeypatch):
    monkeypatch.setattr(docs, "document", lambda title: json.dumps(TINY))
    assert registry.client().get("/api/openapi.json").json() == TINY
    page = registry.client().get("/api")
    assert "<h1>Tiny API</h1>" in page.text
    assert "Things &lt;b&gt;here&lt;/b&gt;." in page.text  # the document's text is escaped like any other
    assert re.findall(r'class="path">([^<]+)<', page.text) == ["/api/v1/things/{thing}"]
    assert 'name="thing" data-in="path" required' in page.text


def test_try_it_sends_gets_with_the_viewers_session(registry, fresh_tab):
    add_person(registry, "alice")
    bob = registry.client(registry.add_user("bob"))
    assert bob.post("/api/v1/collections", json={"name": "open"}).status_code == 201
    assert bob.post("/api/v1/collections", json={"name": "secret", "private": True}).status_code == 201

    alice = fresh_tab()
    alice.sign_in("alice")
    alice.page.get_by_role("navigation", name="Main").get_by_role("link", name="API").click()
    alice.page.wait_for_url("**/api")
    alice.check("api-browser")

    me = alice.page.locator("#get-api-v1-user")
    me.locator("summary").click()
    me.get_by_role("button", name="Try it").click()
    status = me.locator(".try-status")
    status.filter(has_text="→ 200").wait_for()
    assert '"name": "alice"' in me.locator(".try-body").inner_text()

    one = alice.page.locator("#get-api-v1-collections-collection")
    one.locator("summary").click()
    one.get_by_role("textbox", name="collection").fill("open")
    one.get_by_role("button", name="Try it").click()
    one.locator(".try-status").filter(has_text="GET /api/v1/collections/open → 200").wait_for()
    assert '"name": "open"' in one.locator(".try-body").inner_text()
    alice.check("api-browser-try-it")

    # What the viewer may not see answers as if it did not exist, here as everywhere.
    alice.expected_failures.append("/api/v1/collections/secret")
    one.get_by_role("textbox", name="collection").fill("secret")
    one.get_by_role("button", name="Try it").click()
    one.locator(".try-status").filter(has_text="GET /api/v1/collections/secret → 404").wait_for()
    assert '"code": "NOT_FOUND"' in one.locator(".try-body").inner_text()

    listing = alice.page.locator("#get-api-v1-collections")
    listing.locator("summary").click()
    listing.get_by_role("textbox", name="q").fill("o p&n")
    listing.get_by_role("button", name="Try it").click()
    listing.locator(".try-status").filter(has_text="GET /api/v1/collections?q=o+p%26n").wait_for()
    # Writes are described, never sent from this page.
    assert alice.page.locator("#post-api-v1-collections .try-it").count() == 0


def test_the_swagger_ui_beside_it_runs_under_the_same_policy(registry, fresh_tab):
    visitor = fresh_tab()
    visitor.goto("/api")
    visitor.page.get_by_role("link", name="Swagger UI").click()
    visitor.page.wait_for_url("**/api/docs")
    visitor.page.locator(".opblock").first.wait_for()
    document = registry.client().get("/api/openapi.json").json()
    assert visitor.page.locator(".opblock").count() == len(operations(document))
    # Swagger UI's own markup fails axe-core (contrast, buttons nested in buttons), which is why the registry
    # has an API page of its own; its findings are set aside once seen, and nothing else may be wrong.
    assert {"nested-interactive", "color-contrast"} & {found["id"] for found in visitor.violations()}
    visitor.assert_clean_apart_from("/api/docs")
