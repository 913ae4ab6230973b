from tests.jupyter_support import connect, cutting_proxy, mksif, sif  # noqa: F401
