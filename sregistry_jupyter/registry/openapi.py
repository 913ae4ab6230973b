"""The OpenAPI 3 document of the native API."""

from __future__ import annotations

from typing import Any

from .. import __version__


def build_spec(title: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": f"{title} API", "version": __version__},
        "paths": {},
    }
