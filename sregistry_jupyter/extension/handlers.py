"""The extension's REST API under ``<base_url>/sregistry/api/`` (documented in docs/extension-api.md).

Handlers only read requests and shape answers: the registry decides what the person may do (its
refusals come back with its status and its own words), and ``workspace`` decides which paths are
allowed. Every verb is ``@tornado.web.authenticated`` and writes need jupyter_server's XSRF check or
token, as for any Jupyter API.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import iostream, web

from .. import figures
from ..client import AsyncRegistryClient
from ..client.errors import InvalidInput, RegistryError, RegistryUnavailable, Unauthorized
from ..client.refs import parse_ref
from . import workspace
from .transfers import Transfer, TransferManager

HEARTBEAT_SECONDS = 15.0
HUB_REFUSAL = (
    "the registry does not accept this server's JupyterHub token: ask your hub's administrators to give "
    "you access to the registry's hub service"
)


def dump(value: Any) -> Any:
    """Models as JSON-ready data (datetimes as ISO strings), anything else as it is."""
    if isinstance(value, list):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


class SregistryHandler(ExtensionHandlerMixin, APIHandler):
    """Answers in JSON; a registry error keeps the registry's status, code and message."""

    @property
    def sregistry(self) -> Any:
        return self.extensionapp

    @property
    def client(self) -> AsyncRegistryClient:
        return self.sregistry.registry_client()

    @property
    def transfers(self) -> TransferManager:
        return self.sregistry.transfers

    @property
    def root(self) -> Any:
        return self.sregistry.workspace_root

    def reply(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(dump(value)))

    def body(self) -> dict[str, Any]:
        try:
            value = json.loads(self.request.body or b"{}")
        except (ValueError, RecursionError):
            raise InvalidInput("the body is not valid JSON") from None
        if not isinstance(value, dict):
            raise InvalidInput("the body must be a JSON object")
        return value

    def string(self, body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
        value = body.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or (required and not value):
            raise InvalidInput(f"'{name}' must be a non-empty string")
        return value

    def int_query(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise InvalidInput(f"{name} must be a whole number from {low} to {high}")
        return int(raw)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, RegistryError):
            status = error.status or 502
            message = error.message
            if isinstance(error, Unauthorized) and self.sregistry.settings_in_use().from_hub:
                message = f"{HUB_REFUSAL} (the registry said: {error.message})"
            code = error.code or ("UNREACHABLE" if isinstance(error, RegistryUnavailable) else type(error).__name__)
            self.set_status(status if status < 500 else 502)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": message, "code": code}))
            return
        super().write_error(status_code, **kwargs)

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[no-untyped-def]
        if isinstance(value, RegistryError):
            self.log.info("sregistry %s %s -> %s", self.request.method, self.request.path, value.message)
        else:
            super().log_exception(typ, value, tb)


class WhoAmIHandler(SregistryHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply(await self.sregistry.whoami())


class CollectionsHandler(SregistryHandler):
    """The registry's collection page; ``-size`` and ``-stars``, which the registry does not sort by, are
    sorted here over every collection the person may see."""

    LOCAL_SORTS = {"-size": "size", "-stars": "stars"}

    @web.authenticated
    async def get(self) -> None:
        sort = self.get_query_argument("sort", "name")
        query = self.get_query_argument("q", None) or None
        page = self.int_query("page", 1, 1, 1_000_000)
        per_page = self.int_query("per_page", 50, 1, 1000)
        if sort not in self.LOCAL_SORTS:
            self.reply(await self.client.collections(query, sort=sort, page=page, per_page=per_page))
            return
        key = self.LOCAL_SORTS[sort]
        everything = [c async for c in self.client.iter_collections(query)]
        everything.sort(key=lambda c: (-getattr(c, key), c.name))
        shown = everything[(page - 1) * per_page : page * per_page]
        total = len(everything)
        self.reply({"items": shown, "page": page, "per_page": per_page, "total": total, "pages": -(-total // per_page)})


class CollectionHandler(SregistryHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        self.reply(await self.client.collection(name))


class ContainerHandler(SregistryHandler):
    @web.authenticated
    async def get(self, collection: str, name: str) -> None:
        self.reply(await self.client.container(collection, name))


class ImageHandler(SregistryHandler):
    @web.authenticated
    async def get(self, collection: str, container: str, ref: str) -> None:
        separator = "@" if ref.startswith("sha256") else ":"
        self.reply(await self.client.image(parse_ref(f"{collection}/{container}{separator}{ref}")))


class PushableHandler(SregistryHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply({"items": await self.client.pushable()})


class TransfersHandler(SregistryHandler):
    @web.authenticated
    def get(self) -> None:
        self.reply({"items": [t.as_json() for t in self.transfers.newest_first()]})

    @web.authenticated
    async def post(self) -> None:
        body = self.body()
        direction = body.get("direction")
        if direction == "push":
            transfer = self.start_push(body)
        elif direction == "pull":
            transfer = self.start_pull(body)
        else:
            raise InvalidInput("'direction' must be 'push' or 'pull'")
        self.reply(transfer.as_json(), 202)

    def start_push(self, body: dict[str, Any]) -> Transfer:
        relative = self.string(body, "path")
        ref = parse_ref(self.string(body, "ref"))
        tags = body.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            raise InvalidInput("'tags' must be a list of tag names")
        source = workspace.file_to_push(self.root, relative)
        client = self.client
        transfer = Transfer("push", str(ref), workspace.relative(self.root, source), bytes_total=source.stat().st_size)

        async def work(t: Transfer) -> Any:
            image = await client.push(source, ref, tags=tags, progress=t.progress)
            return image.model_dump(mode="json")

        return self.transfers.start(transfer, work)

    def start_pull(self, body: dict[str, Any]) -> Transfer:
        ref = parse_ref(self.string(body, "ref"))
        folder = body.get("folder", self.sregistry.transfer_folder)
        if not isinstance(folder, str):
            raise InvalidInput("'folder' must be a path relative to the workspace")
        default_name = f"{ref.container}_{ref.tag or ref.digest[7:19]}.sif"
        target = workspace.pull_target(self.root, folder, self.string(body, "filename", required=False), default_name)
        client, root = self.client, self.root
        transfer = Transfer("pull", str(ref), workspace.relative(root, target))

        async def work(t: Transfer) -> Any:
            pulled = await client.pull(ref, target, progress=t.progress)
            return {"path": workspace.relative(root, pulled)}

        return self.transfers.start(transfer, work)


class TransferHandler(SregistryHandler):
    @web.authenticated
    def get(self, transfer_id: str) -> None:
        self.reply(self.transfers.get(transfer_id).as_json())

    @web.authenticated
    async def delete(self, transfer_id: str) -> None:
        await self.transfers.cancel(transfer_id)
        self.set_status(204)
        self.finish()


class TransferEventsHandler(SregistryHandler):
    """Server-sent events: the transfer as JSON on every progress step and change of state, then the end."""

    @web.authenticated
    async def get(self, transfer_id: str) -> None:
        transfer = self.transfers.get(transfer_id)
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        seen = -1
        try:
            while True:
                if transfer.version != seen:
                    seen = transfer.version
                    self.write(f"data: {json.dumps(transfer.as_json())}\n\n")
                    await self.flush()
                    if transfer.final:
                        break
                if not await transfer.changed(seen, HEARTBEAT_SECONDS):
                    self.write(": still here\n\n")
                    await self.flush()
        except (iostream.StreamClosedError, asyncio.CancelledError):
            return
        self.finish()


class TeammatesHandler(SregistryHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply({"items": [{"name": name} for name in await self.client.teammates()]})


class MembersHandler(SregistryHandler):
    @web.authenticated
    async def get(self, collection: str) -> None:
        self.reply({"items": await self.client.members(collection)})

    @web.authenticated
    async def post(self, collection: str) -> None:
        body = self.body()
        role = body.get("role", "contributor")
        if role not in ("owner", "contributor"):
            raise InvalidInput("'role' must be 'owner' or 'contributor'")
        self.reply(await self.client.add_member(collection, self.string(body, "user"), role), 201)


class MemberHandler(SregistryHandler):
    @web.authenticated
    async def delete(self, collection: str, user: str) -> None:
        await self.client.remove_member(collection, user)
        self.set_status(204)
        self.finish()


class SharesHandler(SregistryHandler):
    @web.authenticated
    async def post(self) -> None:
        body = self.body()
        days = body.get("days", 7)
        if isinstance(days, bool) or not isinstance(days, int):
            raise InvalidInput("'days' must be a whole number")
        link = await self.client.share_link(parse_ref(self.string(body, "ref")), days=days)
        self.reply({"url": link.url, "expires_at": link.model_dump(mode="json")["expires"]}, 201)


class StatsHandler(SregistryHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply(await self.client.stats(self.int_query("days", 30, 1, 366)))


class FigureHandler(SregistryHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        if name not in figures.FIGURES:
            raise InvalidInput(f"no figure {name!r}: there are {', '.join(figures.FIGURES)}")
        options = {}
        if name == "treemap":
            color_by = self.get_query_argument("color_by", "pulls")
            if color_by not in figures.COLOUR_BY:
                raise InvalidInput(f"color_by must be one of {', '.join(figures.COLOUR_BY)}")
            options["color_by"] = color_by
        days = self.int_query("days", 30, 1, 366)
        if name == "treemap":
            figure = figures.treemap(await self.client.container_usage(days), **options)
        else:
            figure = figures.from_stats(name, await self.client.stats(days))
        self.set_header("Content-Type", "application/json")
        self.finish(figure.to_json())


SEGMENT = r"([^/]+)"


def routes() -> list[tuple[str, type]]:
    api = "/sregistry/api"
    collection = rf"{api}/collections/{SEGMENT}"
    return [
        (rf"{api}/whoami", WhoAmIHandler),
        (rf"{api}/collections", CollectionsHandler),
        (collection, CollectionHandler),
        (rf"{collection}/containers/{SEGMENT}", ContainerHandler),
        (rf"{collection}/containers/{SEGMENT}/images/{SEGMENT}", ImageHandler),
        (rf"{collection}/members", MembersHandler),
        (rf"{collection}/members/{SEGMENT}", MemberHandler),
        (rf"{api}/pushable", PushableHandler),
        (rf"{api}/transfers", TransfersHandler),
        (rf"{api}/transfers/{SEGMENT}", TransferHandler),
        (rf"{api}/transfers/{SEGMENT}/events", TransferEventsHandler),
        (rf"{api}/teammates", TeammatesHandler),
        (rf"{api}/shares", SharesHandler),
        (rf"{api}/stats", StatsHandler),
        (rf"{api}/figures/{SEGMENT}", FigureHandler),
    ]
