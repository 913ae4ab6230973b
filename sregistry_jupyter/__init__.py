"""sregistry-jupyter: a container registry for Singularity/Apptainer images, native to Jupyter."""

__version__ = "0.1.0"

LABEXTENSION_NAME = "sregistry-jupyter"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where JupyterLab finds the prebuilt panel when the package is installed in develop mode.

    A normal install copies the same files to ``share/jupyter/labextensions/sregistry-jupyter``.
    """
    return [{"src": "labextension", "dest": LABEXTENSION_NAME}]
