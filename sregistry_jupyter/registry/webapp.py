"""Assembly of the Tornado application from the protocol adapters' route tables."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

from tornado import httputil, web

from . import logs
from .context import Registry
from .handlers import docs, library, native, pages, shub
from .handlers.base import NotFoundHandler

HERE = Path(__file__).parent


def cookie_secret(registry: Registry) -> bytes:
    """Session cookies are signed with a key derived from, not equal to, the registry's secret."""
    return hmac.new(registry.secret_key, b"session cookies", hashlib.sha256).digest()


class RegistryApplication(web.Application):
    """Tornado's application, with each request's address and scheme taken from trusted proxies only
    (``proxies``) before any handler sees it, so that limits, audit rows, links and logs agree."""

    def find_handler(self, request: httputil.HTTPServerRequest, **kwargs: Any) -> web._HandlerDelegate:
        self.settings["registry"].trusted_proxies.apply(request)
        return super().find_handler(request, **kwargs)


def make_app(registry: Registry, *, debug: bool = False) -> web.Application:
    handlers: list = [
        *(registry.authenticator.routes() if registry.authenticator else []),
        *library.routes(),
        *shub.routes(),
        *docs.routes(),
        *native.routes(),
        *pages.routes(),
    ]
    return RegistryApplication(
        handlers,
        registry=registry,
        cookie_secret=cookie_secret(registry),
        template_path=str(HERE / "templates"),
        static_path=str(HERE / "static"),
        default_handler_class=NotFoundHandler,
        xsrf_cookies=False,
        debug=debug,
        compress_response=False,
        log_function=logs.log_request,
    )
