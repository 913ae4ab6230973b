"""The route table of the web pages: each module of this package contributes its own routes."""

from __future__ import annotations

from . import account, api_browser, collections, containers, home, plots, settings, staff, team_pages, upload

MODULES = (home, account, collections, settings, containers, upload, team_pages, staff, api_browser, plots)


def routes() -> list[tuple[str, type]]:
    """Every page's route; more specific patterns (settings, badges) come before a container's page."""
    return [route for module in MODULES for route in module.routes()]
