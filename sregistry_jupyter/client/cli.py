"""``sregistry-jupyter push|pull|ls|search|share|login``: the native API from a cluster shell.

These commands need only the client (httpx), never the registry server: ``sregistry_jupyter.command``
sends them here without importing Tornado, and ``serve`` never imports this module.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from traitlets import Bool, Integer, List, Unicode
from traitlets.config import Application

from .. import __version__
from . import config
from .errors import RegistryError


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


class ClientCommand(Application):
    """A command that talks to a registry with the saved login, the environment, or ``--url``/``--token``."""

    version = __version__
    url = Unicode("", config=True, help="The registry's URL (default: $SREGISTRY_URL, then the saved login).")
    token = Unicode("", config=True, help="The registry token (default: $SREGISTRY_TOKEN, then the saved login).")
    aliases = {"url": "ClientCommand.url", "token": "ClientCommand.token"}
    flags: dict[str, Any] = {}
    arguments: tuple[str, ...] = ()
    optional_arguments: tuple[str, ...] = ()

    def client(self) -> Any:
        from .sync import RegistryClient

        return RegistryClient(self.url or None, self.token or None)

    def start(self) -> None:
        args = list(self.extra_args)
        if not len(self.arguments) <= len(args) <= len(self.arguments) + len(self.optional_arguments):
            names = " ".join([*self.arguments, *(f"[{a}]" for a in self.optional_arguments)])
            print(f"usage: sregistry-jupyter {self.name} {names}", file=sys.stderr)
            self.exit(2)
        try:
            self.run(*args)
        except RegistryError as error:
            print(f"error: {error.message}", file=sys.stderr)
            self.exit(1)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            self.exit(1)

    def run(self, *args: str) -> None:
        raise NotImplementedError

    def progress_bar(self, description: str) -> Any:
        from tqdm import tqdm

        bar = tqdm(
            total=0, unit="B", unit_scale=True, unit_divisor=1024, desc=description, file=sys.stderr, disable=None
        )

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        update.bar = bar  # type: ignore[attr-defined]
        return update


class PushCommand(ClientCommand):
    """Push a SIF file: sregistry-jupyter push image.sif collection/container:tag [--tag more]"""

    name = "push"
    description = __doc__
    tags = List(Unicode(), config=True, help="More tags for the image (repeat --tag).")
    image_description = Unicode("", config=True, help="A description of the image.")
    aliases = {**ClientCommand.aliases, "tag": "PushCommand.tags", "description": "PushCommand.image_description"}
    arguments = ("FILE", "REF")

    def run(self, path: str, ref: str) -> None:
        with self.client() as client:
            update = self.progress_bar(f"push {ref}")
            image = client.push(path, ref, tags=self.tags, description=self.image_description, progress=update)
            update.bar.close()
        print(f"pushed {image.collection}/{image.container}:{','.join(image.tags)} {image.digest}")


class PullCommand(ClientCommand):
    """Pull an image: sregistry-jupyter pull collection/container:tag [FILE or FOLDER]"""

    name = "pull"
    description = __doc__
    arguments = ("REF",)
    optional_arguments = ("PATH",)

    def run(self, ref: str, path: str = ".") -> None:
        with self.client() as client:
            update = self.progress_bar(f"pull {ref}")
            target = client.pull(ref, path, progress=update)
            update.bar.close()
        print(f"pulled {ref} to {target}")


class LsCommand(ClientCommand):
    """List collections, a collection's containers, or a container's tags: sregistry-jupyter ls [c[/n]]"""

    name = "ls"
    description = __doc__
    optional_arguments = ("COLLECTION[/CONTAINER]",)

    def run(self, target: str = "") -> None:
        with self.client() as client:
            if not target:
                rows = [
                    (c.name, str(c.containers), str(c.images), human_size(c.size), "private" if c.private else "")
                    for c in client.iter_collections()
                ]
                print(table(rows, ("COLLECTION", "CONTAINERS", "IMAGES", "SIZE", "")))
            elif "/" not in target:
                detail = client.collection(target)
                rows = [(c.name, ", ".join(sorted({t.name for t in c.tags}))) for c in detail.containers_list]
                print(table(rows, ("CONTAINER", "TAGS")))
            else:
                collection, container = target.split("/", 1)
                found = client.container(collection, container)
                sizes = {i.digest: i.size for i in found.images or []}
                rows = [
                    (t.name, t.arch, t.digest, human_size(sizes.get(t.digest, 0)), "frozen" if t.frozen else "")
                    for t in found.tags
                ]
                print(table(rows, ("TAG", "ARCH", "DIGEST", "SIZE", "")))


class SearchCommand(ClientCommand):
    """Search collections by name or description: sregistry-jupyter search QUERY"""

    name = "search"
    description = __doc__
    arguments = ("QUERY",)

    def run(self, query: str) -> None:
        with self.client() as client:
            rows = [(c.name, c.description[:60], str(c.images)) for c in client.iter_collections(query)]
        print(table(rows, ("COLLECTION", "DESCRIPTION", "IMAGES")) if rows else f"nothing matches {query!r}")


class ShareCommand(ClientCommand):
    """Share: sregistry-jupyter share COLLECTION --with USER [--role owner], or share REF --link [--days 7]"""

    name = "share"
    description = __doc__
    user = Unicode("", config=True, help="The team-mate to give a role in the collection.")
    role = Unicode("contributor", config=True, help="contributor (see and pull) or owner (push and manage).")
    link = Bool(False, config=True, help="Make a download link for an image instead.")
    days = Integer(7, config=True, help="How many days the link works.")
    aliases = {
        **ClientCommand.aliases,
        "with": "ShareCommand.user",
        "role": "ShareCommand.role",
        "days": "ShareCommand.days",
    }
    flags = {"link": ({"ShareCommand": {"link": True}}, "Make a download link for an image.")}
    arguments = ("TARGET",)

    def run(self, target: str) -> None:
        with self.client() as client:
            if self.link:
                made = client.share_link(target, days=self.days)
                print(f"{made.url}\n(valid until {made.expires:%Y-%m-%d %H:%M} UTC)")
                return
            if not self.user:
                raise ValueError("say whom to share with (--with USER), or make a link (--link)")
            member = client.add_member(target, self.user, self.role)
        print(f"{member.user} is now {member.role} of {target}")


class LoginCommand(ClientCommand):
    """Save the registry's URL and a token for later commands: sregistry-jupyter login --url URL"""

    name = "login"
    description = __doc__

    def run(self) -> None:
        from .sync import RegistryClient

        url = self.url or config.resolve().url
        token = self.token
        if not token:
            token = getpass.getpass("token: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
        if not token:
            raise ValueError("no token given")
        with RegistryClient(url, token) as client:
            me = client.whoami()
        path = config.save(client.url, token)
        print(f"signed in to {client.url} as {me.name}; saved in {path}")


class ClientApp(Application):
    """The client commands, when ``sregistry_jupyter.command`` runs them without the server."""

    name = "sregistry-jupyter"
    version = __version__
    subcommands = {
        "push": (PushCommand, PushCommand.__doc__),
        "pull": (PullCommand, PullCommand.__doc__),
        "ls": (LsCommand, LsCommand.__doc__),
        "search": (SearchCommand, SearchCommand.__doc__),
        "share": (ShareCommand, ShareCommand.__doc__),
        "login": (LoginCommand, LoginCommand.__doc__),
    }

    def start(self) -> None:
        if self.subapp is None:
            self.print_help()
            self.exit(1)
        self.subapp.start()


def main(argv: list[str] | None = None) -> None:
    ClientApp.launch_instance(argv)
