"""The OpenAPI document of the native API and a Swagger UI page, with its assets served locally."""

from __future__ import annotations

import functools
import json

from swagger_ui_bundle import swagger_ui_path

from .base import BaseHandler
from .security import StaticFileHandler, set_page_headers


@functools.cache
def document(title: str) -> str:
    """The document as JSON, generated once per process; the API page reads the same one. The generator
    reads the route table, which routes this handler, so it is imported when first needed rather than with
    this module."""
    from ..openapi import build_spec

    return json.dumps(build_spec(title))


class OpenApiHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Cache-Control", "no-cache")
        self.set_header("Content-Type", "application/json")
        self.finish(document(self.registry.name))


class SwaggerPageHandler(BaseHandler):
    def set_default_headers(self) -> None:
        super().set_default_headers()
        set_page_headers(self)

    def get(self) -> None:
        self.set_header("Cache-Control", "no-cache")
        self.render("swagger.html", registry=self.registry)


def routes() -> list[tuple]:
    """The Swagger UI page and its assets; the document itself is a route of ``native``."""
    return [
        (r"/api/docs/?", SwaggerPageHandler),
        (r"/api/docs/assets/(.*)", StaticFileHandler, {"path": str(swagger_ui_path)}),
    ]
