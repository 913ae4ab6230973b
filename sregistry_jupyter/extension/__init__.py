"""The jupyter_server extension: the REST API that the JupyterLab panel and the widgets call."""

from .app import SregistryExtension

__all__ = ["SregistryExtension"]
