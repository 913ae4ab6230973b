"""The web interface: server-rendered pages over the service layer, one module per group of pages."""

from .routes import routes

__all__ = ["routes"]
