"""The OpenAPI document of the native API and a Swagger UI page, with its assets served locally."""

from __future__ import annotations

from typing import Any

from swagger_ui_bundle import swagger_ui_path

from ..context import Registry
from ..openapi import build_spec
from .base import BaseHandler
from .security import StaticFileHandler, set_page_headers


def openapi_document(registry: Registry) -> dict[str, Any]:
    """The OpenAPI document this registry serves; the API browser page reads the same one."""
    return build_spec(registry.name)


class OpenApiHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Cache-Control", "no-cache")
        self.write_json(openapi_document(self.registry))


class SwaggerPageHandler(BaseHandler):
    def set_default_headers(self) -> None:
        super().set_default_headers()
        set_page_headers(self)

    def get(self) -> None:
        self.set_header("Cache-Control", "no-cache")
        self.render("swagger.html", registry=self.registry)


def routes() -> list[tuple]:
    return [
        (r"/api/openapi.json", OpenApiHandler),
        (r"/api/docs/?", SwaggerPageHandler),
        (r"/api/docs/assets/(.*)", StaticFileHandler, {"path": str(swagger_ui_path)}),
    ]
