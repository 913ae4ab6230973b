"""HTML pages of the web interface."""

from __future__ import annotations

from ..access import ANONYMOUS
from ..services import collections
from .base import BaseHandler


class PageHandler(BaseHandler):
    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
        self.set_header("X-Frame-Options", "DENY")

    def authenticate(self):  # type: ignore[no-untyped-def]
        return ANONYMOUS


class HomeHandler(PageHandler):
    def get(self) -> None:
        recent, total = collections.list_collections(self.db, self.principal, sort="-updated", limit=10)
        self.render("home.html", registry=self.registry, recent=recent, total=total)


def routes() -> list[tuple[str, type]]:
    return [(r"/", HomeHandler)]
