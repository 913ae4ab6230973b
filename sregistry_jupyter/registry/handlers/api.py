"""The native JSON API under ``/api/v1``: the product's own API, used by the web pages, the Jupyter
extension, the widgets and the Lab panel. Errors are ``{"code": ..., "message": ...}``.
"""

from __future__ import annotations

from typing import Any

from ..access import Action, may_manage_tokens
from ..errors import Forbidden, InvalidInput, NotFound
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


class UserHandler(ApiHandler):
    def get(self) -> None:
        self.write_json(user_json(require_user(self.principal)))


class TokensHandler(ApiHandler):
    def get(self) -> None:
        user = require_user(self.principal)
        self.write_json({"items": [token_json(t) for t in users.list_tokens(self.db, user)]})

    def post(self) -> None:
        user = require_user(self.principal)
        if not may_manage_tokens(self.principal):
            raise Forbidden("creating tokens needs an admin-scoped token or a signed-in session")
        body = self.json_body()
        expires = body.get("expires_in_days")
        if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int | float)):
            raise InvalidInput("'expires_in_days' must be a number")
        row, token = users.create_token(
            self.db,
            user,
            self.registry.secret_key,
            name=self.field(body, "name", str, "token"),
            scope=self.field(body, "scope", str, "read"),
            expires_in_days=expires,
        )
        self.db.commit()
        self.write_json({**token_json(row), "token": token}, 201)


class TokenHandler(ApiHandler):
    def delete(self, token_id: str) -> None:
        users.revoke_token(self.db, self.principal, int(token_id))
        self.db.commit()
        self.no_content()


class CollectionsHandler(ApiHandler):
    def get(self) -> None:
        page, per_page = self.paging()
        items, total = collections.list_collections(
            self.db,
            self.principal,
            query=self.get_query_argument("q", None),
            sort=self.get_query_argument("sort", "name"),
            offset=(page - 1) * per_page,
            limit=per_page,
        )
        self.write_json(
            {
                "items": [collection_json(s) for s in items],
                "page": page,
                "per_page": per_page,
                "total": total,
                "pages": -(-total // per_page),
            }
        )

    def post(self) -> None:
        body = self.json_body()
        name = self.field(body, "name", str)
        if name is None:
            raise InvalidInput("'name' is required")
        collection = collections.create_collection(
            self.db,
            self.principal,
            name,
            description=self.field(body, "description", str, ""),
            private=self.field(body, "private", bool),
        )
        self.db.commit()
        self.set_header("Location", f"{PREFIX}/collections/{collection.name}")
        self.write_json(collection_json(collections.summarise(self.db, collection)), 201)


class CollectionHandler(ApiHandler):
    def get(self, name: str) -> None:
        collection = collections.get_visible(self.db, self.principal, name)
        body = collection_json(collections.summarise(self.db, collection))
        body["containers_list"] = [container_json(c) for c in collections.list_containers(self.db, collection)]
        self.write_json(body)

    def patch(self, name: str) -> None:
        body = self.json_body()
        collection = collections.update_collection(
            self.db,
            self.principal,
            name,
            description=self.field(body, "description", str),
            private=self.field(body, "private", bool),
        )
        self.db.commit()
        self.write_json(collection_json(collections.summarise(self.db, collection)))

    def delete(self, name: str) -> None:
        collections.delete_collection(self.db, self.principal, name)
        self.db.commit()
        self.no_content()


class ContainersHandler(ApiHandler):
    def get(self, collection_name: str) -> None:
        collection = collections.get_visible(self.db, self.principal, collection_name)
        self.write_json({"items": [container_json(c) for c in collections.list_containers(self.db, collection)]})


class ContainerHandler(ApiHandler):
    def get(self, collection_name: str, name: str) -> None:
        collection = collections.get_visible(self.db, self.principal, collection_name)
        container = collections.get_container(self.db, collection, name)
        self.write_json(container_json(container, images.list_images(self.db, container)))

    def delete(self, collection_name: str, name: str) -> None:
        collections.delete_container(self.db, self.principal, collection_name, name)
        self.db.commit()
        self.no_content()


class ImageHandler(ApiHandler):
    def get(self, collection_name: str, container_name: str, ref: str) -> None:
        image = images.resolve(self.db, self.principal, collection_name, container_name, ref, self.arch_argument())
        self.write_json(image_json(image))

    def delete(self, collection_name: str, container_name: str, ref: str) -> None:
        images.delete_image(self.db, self.principal, collection_name, container_name, ref, self.arch_argument())
        self.db.commit()
        self.no_content()


class TagsHandler(ApiHandler):
    def get(self, collection_name: str, container_name: str) -> None:
        collection = collections.get_visible(self.db, self.principal, collection_name)
        container = collections.get_container(self.db, collection, container_name)
        self.write_json({"items": tags_json(container)})


class TagHandler(ApiHandler):
    def put(self, collection_name: str, container_name: str, tag: str) -> None:
        body = self.json_body()
        digest = self.field(body, "digest", str)
        if digest is None:
            raise InvalidInput("'digest' is required")
        arch, frozen = self.field(body, "arch", str), self.field(body, "frozen", bool)
        if frozen is not None:
            # Asked before tagging, so that a refused freeze does not leave the tag moved.
            images.resolve(self.db, self.principal, collection_name, container_name, digest, arch, Action.FREEZE)
        row = images.tag_image(self.db, self.principal, collection_name, container_name, tag, digest, arch)
        if frozen is not None:
            row = images.set_frozen(self.db, self.principal, collection_name, container_name, tag, frozen, row.arch)
            self.db.commit()
        self.write_json(tag_json(row))

    def delete(self, collection_name: str, container_name: str, tag: str) -> None:
        images.untag(self.db, self.principal, collection_name, container_name, tag, self.arch_argument())
        self.db.commit()
        self.no_content()


class StatsHandler(ApiHandler):
    def get(self) -> None:
        days = self.int_argument("days", 30, 1, stats.MAX_DAYS)
        self.write_json(stats.registry_stats(self.db, self.principal, days))


class ApiNotFoundHandler(ApiHandler):
    def prepare(self) -> None:
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
