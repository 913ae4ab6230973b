"""sregistry-jupyter: a container registry for Singularity/Apptainer images, native to Jupyter."""

__version__ = "0.1.0"
