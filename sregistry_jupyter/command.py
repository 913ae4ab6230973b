"""The ``sregistry-jupyter`` command: client commands without the server, everything else with it.

``push``, ``pull``, ``ls``, ``search``, ``share`` and ``login`` need only httpx, so they are sent to
``client.cli`` before anything imports Tornado or SQLAlchemy; ``serve`` and ``admin`` go to the
registry's application, which lists the client commands too (``sregistry-jupyter --help``).
"""

from __future__ import annotations

import sys

CLIENT_COMMANDS = ("push", "pull", "ls", "search", "share", "login")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in CLIENT_COMMANDS:
        from .client.cli import main as client_main

        client_main(args)
        return
    from .registry.app import main as registry_main

    registry_main(args)
