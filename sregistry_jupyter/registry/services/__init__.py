"""Domain operations shared by every surface (library, shub, native API, pages, CLI).

Each function takes a database session and a Principal, asks ``access`` before acting, and raises the
errors of ``errors``; none of them knows which protocol called it.
"""
