"""Errors for people and for programs: a browser asking for a page gets an HTML page in the site's layout,
an API client keeps its protocol's JSON envelope.

Page handlers already render their errors (``PageHandler.send_error_body``). This module answers the
paths no route matches: as a page when the request comes from a browser (its ``Accept`` prefers HTML)
for a path outside the APIs, else as the JSON 404 every API client expects.
"""

from __future__ import annotations

from ...errors import NotFound
from ..base import BaseHandler
from .base import PageHandler

API_PREFIXES = ("/api/", "/v1/", "/v2/", "/assets/", "/shares/", "/version")
NO_PAGE = "there is no page at this address; it may have moved, or the link may be mistyped"


def wants_html(accept: str) -> bool:
    """True if an ``Accept`` header puts HTML before JSON, as browsers' navigations do."""
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    html = next((i for i, kind in enumerate(kinds) if kind in ("text/html", "application/xhtml+xml")), None)
    json = next((i for i, kind in enumerate(kinds) if kind == "application/json" or kind.endswith("+json")), None)
    return html is not None and (json is None or html < json)


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


class UnknownAddress(PageHandler):
    """Answers every request no route matches: a 404 page for a browser, a JSON 404 for anyone else."""

    @property
    def for_browser(self) -> bool:
        return wants_html(self.request.headers.get("Accept", "")) and not is_api_path(self.request.path)

    async def prepare(self) -> None:
        await super().prepare()
        raise NotFound(NO_PAGE if self.for_browser else "no such endpoint")

    def send_error_body(self, status: int, code: str, message: str) -> None:
        if self.for_browser:
            super().send_error_body(status, code, message)
        else:
            BaseHandler.send_error_body(self, status, code, message)
