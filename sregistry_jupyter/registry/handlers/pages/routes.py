"""The route table of the web pages: each module of this package contributes its own routes."""

from __future__ import annotations

from . import account, collections, containers, home, settings, upload

MODULES = (home, account, collections, settings, containers, upload)


def routes() -> list[tuple[str, type]]:
    """Every page's route; more specific patterns (settings, badges) come before a container's page."""
    return [route for module in MODULES for route in module.routes()]
