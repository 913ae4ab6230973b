"""Assembly of the Tornado application from the protocol adapters' route tables."""

from __future__ import annotations

from pathlib import Path

from tornado import web

from .context import Registry
from .handlers import api, docs, library, pages, shub
from .handlers.base import NotFoundHandler

HERE = Path(__file__).parent


def make_app(registry: Registry, *, debug: bool = False) -> web.Application:
    handlers: list = [
        *library.routes(),
        *shub.routes(),
        *docs.routes(),
        *api.routes(),
        *pages.routes(),
    ]
    return web.Application(
        handlers,
        registry=registry,
        template_path=str(HERE / "templates"),
        static_path=str(HERE / "static"),
        default_handler_class=NotFoundHandler,
        xsrf_cookies=False,
        debug=debug,
        compress_response=False,
    )
