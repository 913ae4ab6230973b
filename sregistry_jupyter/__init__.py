"""sregistry-jupyter: a container registry for Singularity/Apptainer images, native to Jupyter."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

LABEXTENSION_NAME = "sregistry-jupyter"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where JupyterLab finds the prebuilt panel when the package is installed in develop mode.

    A normal install copies the same files to ``share/jupyter/labextensions/sregistry-jupyter``.
    """
    return [{"src": "labextension", "dest": LABEXTENSION_NAME}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Where jupyter_server finds the extension; imported only when a Jupyter server loads it."""
    from .extension import SregistryExtension

    return [{"module": "sregistry_jupyter", "app": SregistryExtension}]
