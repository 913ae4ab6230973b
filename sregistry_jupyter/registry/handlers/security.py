"""The security headers of every HTML page and of the files pages load.

Scripts come only from the registry itself (no inline script, no ``eval``), so a name or description
that slipped through escaping still could not run. Styles allow inline ``style`` attributes because
plotly.js and Swagger UI position what they draw with them; styles cannot run code. Nothing may frame a
page (``frame-ancestors``, and ``X-Frame-Options`` for older browsers), forms post only to the registry,
and other sites are told where a visitor came from only as the registry's origin.
"""

from __future__ import annotations

from tornado import web

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def set_page_headers(handler: web.RequestHandler) -> None:
    for name, value in PAGE_HEADERS.items():
        handler.set_header(name, value)


class StaticFileHandler(web.StaticFileHandler):
    """The registry's static files, with the same headers as its pages, so that a stylesheet or script is
    never sniffed into something else."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        set_page_headers(self)
