"""The OpenAPI document of the native API and a Swagger UI page, with its assets served locally."""

from __future__ import annotations

from swagger_ui_bundle import swagger_ui_path
from tornado import web

from ..openapi import build_spec
from .base import BaseHandler


class OpenApiHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Cache-Control", "no-cache")
        self.write_json(build_spec(self.registry.name))


class SwaggerPageHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Cache-Control", "no-cache")
        self.render("swagger.html", registry=self.registry)


def routes() -> list[tuple]:
    return [
        (r"/api/openapi.json", OpenApiHandler),
        (r"/api/docs/?", SwaggerPageHandler),
        (r"/api/docs/assets/(.*)", web.StaticFileHandler, {"path": str(swagger_ui_path)}),
    ]
