"""The OpenAPI document of the native API and a Swagger UI page, with its assets served locally."""

from __future__ import annotations

import functools
import json

from swagger_ui_bundle import swagger_ui_path
from tornado import web

from .base import BaseHandler


@functools.cache
def document(title: str) -> str:
    """The document as JSON, generated once per process. The generator reads the route table, which routes
    this handler, so it is imported when first needed rather than with this module."""
    from ..openapi import build_spec

    return json.dumps(build_spec(title))


class OpenApiHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Cache-Control", "no-cache")
        self.set_header("Content-Type", "application/json")
        self.finish(document(self.registry.name))


class SwaggerPageHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Cache-Control", "no-cache")
        self.render("swagger.html", registry=self.registry)


def routes() -> list[tuple]:
    """The Swagger UI page and its assets; the document itself is a route of ``native``."""
    return [
        (r"/api/docs/?", SwaggerPageHandler),
        (r"/api/docs/assets/(.*)", web.StaticFileHandler, {"path": str(swagger_ui_path)}),
    ]
