"""The Sylabs library API as the apptainer/singularity library client speaks it.

Errors use the library envelope ``{"error": {"code": <status>, "message": ...}}``, which the client
prints as "request did not succeed: <message>".
"""

from __future__ import annotations

from typing import Any

from ... import __version__
from ..errors import Unauthorized
from .base import BaseHandler

API_VERSION = "2.0.0-alpha.2"


class LibraryHandler(BaseHandler):
    def error_body(self, status: int, code: str, message: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": message}}


class VersionHandler(LibraryHandler):
    def get(self) -> None:
        self.write_json({"data": {"version": __version__, "apiVersion": API_VERSION}})


class TokenStatusHandler(LibraryHandler):
    """``apptainer remote login`` checks a token here: 200 if it is valid, 401 otherwise."""

    def get(self) -> None:
        if not self.principal.authenticated:
            raise Unauthorized("no token was sent")
        self.write_json({"data": {"status": "valid", "user": self.principal.name}})


def routes() -> list[tuple[str, type]]:
    return [
        (r"/version", VersionHandler),
        (r"/v1/token-status", TokenStatusHandler),
    ]
