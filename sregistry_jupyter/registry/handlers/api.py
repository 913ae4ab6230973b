"""The native JSON API under ``/api/v1``: the product's own API, used by the web pages, the Jupyter
extension, the widgets and the Lab panel. Errors are ``{"code": ..., "message": ...}``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..access import Action, Principal, may_manage_tokens, token_management_refusal
from ..errors import Forbidden, InvalidInput, NotFound
from ..names import row_id
from ..orm import User
from ..services import collections, images, stats, users
from ..services.collections import require_user
from .base import BaseHandler
from .serialize import collection_json, container_json, image_json, tag_json, tags_json, token_json, user_json

SEGMENT = r"([^/]+)"
PREFIX = "/api/v1"
MAX_PAGE = 1_000_000


class ApiHandler(BaseHandler):
    def int_argument(self, name: str, default: int, low: int, high: int | None = None) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise InvalidInput(f"{name} must be an integer, not {raw!r}") from None
        if value < low:
            raise InvalidInput(f"{name} must be at least {low}")
        return min(value, high) if high is not None else value

    def paging(self) -> tuple[int, int]:
        page = self.int_argument("page", 1, 1, MAX_PAGE)
        per_page = self.int_argument("per_page", self.registry.default_page_size, 1, self.registry.max_page_size)
        return page, per_page

    def arch_argument(self) -> str | None:
        return self.get_query_argument("arch", None) or None

    def field(self, body: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
        value = body.get(name, default)
        if value is not None and not isinstance(value, kind):
            raise InvalidInput(f"'{name}' must be a {kind.__name__}")
        return value

    def no_content(self) -> None:
        self.set_status(204)
        self.finish()


def me(session: Session, principal: Principal) -> dict[str, Any]:
    user = session.get(User, require_user(principal).id)
    if user is None:
        raise NotFound("this account no longer exists")
    return user_json(user)


def my_tokens(session: Session, principal: Principal) -> dict[str, Any]:
    return {"items": [token_json(t) for t in users.list_tokens(session, require_user(principal))]}


def new_token(
    session: Session, principal: Principal, secret_key: bytes, name: str, scope: str, expires: float | None
) -> dict[str, Any]:
    user = require_user(principal)
    if not may_manage_tokens(principal):
        raise Forbidden(token_management_refusal(principal))
    row, token = users.create_token(session, user, secret_key, name=name, scope=scope, expires_in_days=expires)
    return {**token_json(row), "token": token}


class UserHandler(ApiHandler):
    async def get(self) -> None:
        self.write_json(await self.read_db(me, self.principal))


class TokensHandler(ApiHandler):
    async def get(self) -> None:
        self.write_json(await self.read_db(my_tokens, self.principal))

    async def post(self) -> None:
        require_user(self.principal)
        body = self.json_body()
        expires = body.get("expires_in_days")
        if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int | float)):
            raise InvalidInput("'expires_in_days' must be a number")
        created = await self.write_db(
            new_token,
            self.principal,
            self.registry.secret_key,
            self.field(body, "name", str, "token"),
            self.field(body, "scope", str, "read"),
            expires,
        )
        self.write_json(created, 201)


class TokenHandler(ApiHandler):
    async def delete(self, token_id: str) -> None:
        require_user(self.principal)
        await self.write_db(users.revoke_token, self.principal, row_id(token_id, "token"))
        self.no_content()


def collection_page(
    session: Session, principal: Principal, query: str | None, sort: str, page: int, per_page: int
) -> dict[str, Any]:
    items, total = collections.list_collections(
        session, principal, query=query, sort=sort, offset=(page - 1) * per_page, limit=per_page
    )
    return {
        "items": [collection_json(s) for s in items],
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": -(-total // per_page),
    }


def collection_detail(session: Session, principal: Principal, name: str) -> dict[str, Any]:
    collection = collections.get_visible(session, principal, name)
    body = collection_json(collections.summarise(session, collection))
    body["containers_list"] = [container_json(c) for c in collections.list_containers(session, collection)]
    return body


def create_collection(
    session: Session, principal: Principal, name: str, description: str, private: bool | None
) -> dict[str, Any]:
    collection = collections.create_collection(session, principal, name, description=description, private=private)
    return collection_json(collections.summarise(session, collection))


def update_collection(
    session: Session, principal: Principal, name: str, description: str | None, private: bool | None
) -> dict[str, Any]:
    collection = collections.update_collection(session, principal, name, description=description, private=private)
    return collection_json(collections.summarise(session, collection))


class CollectionsHandler(ApiHandler):
    async def get(self) -> None:
        page, per_page = self.paging()
        self.write_json(
            await self.read_db(
                collection_page,
                self.principal,
                self.get_query_argument("q", None),
                self.get_query_argument("sort", "name"),
                page,
                per_page,
            )
        )

    async def post(self) -> None:
        body = self.json_body()
        name = self.field(body, "name", str)
        if name is None:
            raise InvalidInput("'name' is required")
        created = await self.write_db(
            create_collection,
            self.principal,
            name,
            self.field(body, "description", str, ""),
            self.field(body, "private", bool),
        )
        self.set_header("Location", f"{PREFIX}/collections/{created['name']}")
        self.write_json(created, 201)


class CollectionHandler(ApiHandler):
    async def get(self, name: str) -> None:
        self.write_json(await self.read_db(collection_detail, self.principal, name))

    async def patch(self, name: str) -> None:
        body = self.json_body()
        self.write_json(
            await self.write_db(
                update_collection,
                self.principal,
                name,
                self.field(body, "description", str),
                self.field(body, "private", bool),
            )
        )

    async def delete(self, name: str) -> None:
        await self.write_db(collections.delete_collection, self.principal, name)
        self.no_content()


def container_list(session: Session, principal: Principal, collection_name: str) -> dict[str, Any]:
    collection = collections.get_visible(session, principal, collection_name)
    return {"items": [container_json(c) for c in collections.list_containers(session, collection)]}


def container_detail(session: Session, principal: Principal, collection_name: str, name: str) -> dict[str, Any]:
    collection = collections.get_visible(session, principal, collection_name)
    container = collections.get_container(session, collection, name)
    return container_json(container, images.list_images(session, container))


class ContainersHandler(ApiHandler):
    async def get(self, collection_name: str) -> None:
        self.write_json(await self.read_db(container_list, self.principal, collection_name))


class ContainerHandler(ApiHandler):
    async def get(self, collection_name: str, name: str) -> None:
        self.write_json(await self.read_db(container_detail, self.principal, collection_name, name))

    async def delete(self, collection_name: str, name: str) -> None:
        await self.write_db(collections.delete_container, self.principal, collection_name, name)
        self.no_content()


def image_detail(
    session: Session, principal: Principal, collection: str, container: str, ref: str, arch: str | None
) -> dict[str, Any]:
    return image_json(images.resolve(session, principal, collection, container, ref, arch))


class ImageHandler(ApiHandler):
    async def get(self, collection_name: str, container_name: str, ref: str) -> None:
        self.write_json(
            await self.read_db(image_detail, self.principal, collection_name, container_name, ref, self.arch_argument())
        )

    async def delete(self, collection_name: str, container_name: str, ref: str) -> None:
        await self.write_db(
            images.delete_image, self.principal, collection_name, container_name, ref, self.arch_argument()
        )
        self.no_content()


def tag_list(session: Session, principal: Principal, collection_name: str, container_name: str) -> dict[str, Any]:
    collection = collections.get_visible(session, principal, collection_name)
    container = collections.get_container(session, collection, container_name)
    return {"items": tags_json(container)}


def put_tag(
    session: Session,
    principal: Principal,
    collection: str,
    container: str,
    tag: str,
    digest: str,
    arch: str | None,
    frozen: bool | None,
) -> dict[str, Any]:
    """Point ``tag`` at ``digest``, and freeze or unfreeze it if asked; the freeze is checked before the tag
    moves, so a refused freeze does not leave the tag moved."""
    if frozen is not None:
        images.resolve(session, principal, collection, container, digest, arch, Action.FREEZE)
    row = images.tag_image(session, principal, collection, container, tag, digest, arch)
    if frozen is not None:
        row = images.set_frozen(session, principal, collection, container, tag, frozen, row.arch)
    return tag_json(row)


class TagsHandler(ApiHandler):
    async def get(self, collection_name: str, container_name: str) -> None:
        self.write_json(await self.read_db(tag_list, self.principal, collection_name, container_name))


class TagHandler(ApiHandler):
    async def put(self, collection_name: str, container_name: str, tag: str) -> None:
        body = self.json_body()
        digest = self.field(body, "digest", str)
        if digest is None:
            raise InvalidInput("'digest' is required")
        self.write_json(
            await self.write_db(
                put_tag,
                self.principal,
                collection_name,
                container_name,
                tag,
                digest,
                self.field(body, "arch", str),
                self.field(body, "frozen", bool),
            )
        )

    async def delete(self, collection_name: str, container_name: str, tag: str) -> None:
        await self.write_db(images.untag, self.principal, collection_name, container_name, tag, self.arch_argument())
        self.no_content()


class StatsHandler(ApiHandler):
    async def get(self) -> None:
        days = self.int_argument("days", 30, 1, stats.MAX_DAYS)
        self.write_json(await self.read_db(stats.registry_stats, self.principal, days))


class ApiNotFoundHandler(ApiHandler):
    async def prepare(self) -> None:
        raise NotFound("no such endpoint")


def routes() -> list[tuple[str, type]]:
    from .transfer import DownloadHandler, ImagesHandler

    container = rf"{PREFIX}/collections/{SEGMENT}/containers/{SEGMENT}"
    return [
        (rf"{PREFIX}/user", UserHandler),
        (rf"{PREFIX}/user/tokens", TokensHandler),
        (rf"{PREFIX}/user/tokens/(\d+)", TokenHandler),
        (rf"{PREFIX}/collections", CollectionsHandler),
        (rf"{PREFIX}/collections/{SEGMENT}", CollectionHandler),
        (rf"{PREFIX}/collections/{SEGMENT}/containers", ContainersHandler),
        (container, ContainerHandler),
        (rf"{container}/images", ImagesHandler),
        (rf"{container}/images/{SEGMENT}", ImageHandler),
        (rf"{container}/images/{SEGMENT}/file", DownloadHandler),
        (rf"{container}/tags", TagsHandler),
        (rf"{container}/tags/{SEGMENT}", TagHandler),
        (rf"{PREFIX}/stats", StatsHandler),
        (rf"{PREFIX}/.*", ApiNotFoundHandler),
    ]
