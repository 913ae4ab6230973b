"""Every page route of the application answers with the security headers, whatever the answer is (a page,
a redirect to sign in, a refusal, a 405 for a form's path), and so do the files pages load."""

from __future__ import annotations

import re

import pytest
from tornado.routing import PathMatches

from sregistry_jupyter.registry.handlers.docs import SwaggerPageHandler
from sregistry_jupyter.registry.handlers.pages.base import PageHandler
from sregistry_jupyter.registry.handlers.security import PAGE_HEADERS
from sregistry_jupyter.registry.webapp import make_app
from tests.registry.test_sign_in import add_person, signed_in

SAMPLE = "1"
STATIC = ["/static/tools.css", "/static/plots.js", "/vendor/plotly/plotly.min.js", "/api/docs/assets/swagger-ui.css"]


def page_paths(registry) -> list[str]:
    """A concrete path for every route whose handler is a page, each group filled with a sample value."""
    app = make_app(registry.context)
    paths = []
    for rule in app.wildcard_router.rules:
        handler = rule.target
        if not (isinstance(handler, type) and issubclass(handler, PageHandler | SwaggerPageHandler)):
            continue
        assert isinstance(rule.matcher, PathMatches)
        groups = rule.matcher.regex.groups
        path = rule.matcher.reverse(*[SAMPLE] * groups) if groups else rule.matcher.reverse()
        assert path is not None, rule.matcher.regex.pattern
        paths.append(path.removesuffix("/?"))  # an optional trailing slash
    return paths


def assert_headers(response, path: str) -> None:
    for name, value in PAGE_HEADERS.items():
        assert response.headers.get(name) == value, f"{path} ({response.status_code}): {name}"
    policy = response.headers["Content-Security-Policy"]
    scripts = re.search(r"script-src ([^;]+)", policy).group(1)
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    assert "frame-ancestors 'none'" in policy


@pytest.mark.parametrize("who", ["anonymous", "alice"])
def test_every_page_route_sends_the_security_headers(registry, who):
    if who == "anonymous":
        client = registry.client(follow_redirects=False)
    else:
        add_person(registry, "alice")
        client = signed_in(registry, "alice")
    paths = page_paths(registry)
    assert {"/", "/teams", "/staff/audit", "/staff/users", "/api", "/plots", "/api/docs"} <= set(paths)
    statuses = set()
    for path in paths:
        response = client.get(path, headers={"Accept": "text/html"})
        assert response.status_code < 500, f"{path}: {response.status_code} {response.text[:500]}"
        statuses.add(response.status_code)
        assert_headers(response, path)
    assert 200 in statuses and 405 in statuses  # pages and the paths forms post to
    assert_headers(client.get("/no/such/page", headers={"Accept": "text/html"}), "/no/such/page")


def test_no_page_carries_an_inline_script(registry):
    add_person(registry, "alice")
    client = signed_in(registry, "alice")
    for path in page_paths(registry):
        response = client.get(path, headers={"Accept": "text/html"})
        for tag in re.findall(r"<script\b[^>]*>", response.text):
            assert "src=" in tag or 'type="application/json"' in tag, f"{path}: {tag}"
        assert not re.search(r"<[^>]*\son[a-z]+=", response.text), f"{path} has an inline event handler"


def test_the_files_pages_load_are_never_sniffed(registry):
    client = registry.client()
    for path in STATIC:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
