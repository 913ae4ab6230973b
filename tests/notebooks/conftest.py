from tests.jupyter_support import mksif, sif  # noqa: F401
