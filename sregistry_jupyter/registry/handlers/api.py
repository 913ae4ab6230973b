"""The native JSON API under ``/api/v1``: the product's own API, used by the web pages, the Jupyter
extension, the widgets and the Lab panel. Errors are ``{"code": ..., "message": ...}``.

Bodies are validated by the shared models (``sregistry_jupyter.models``): a fault is a 400 naming the field.
Answers are those models, rendered by their own serialiser. The paths are in ``native``'s route table.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.orm import Session

from ... import models
from ...models import rules
from ..access import Action, Principal, may_manage_tokens, token_management_refusal
from ..errors import Forbidden, InvalidInput, NotFound
from ..names import row_id
from ..orm import User
from ..services import collections, images, stats, users
from ..services.collections import require_user
from .base import BaseHandler
from .serialize import (
    collection_detail_model,
    collection_fields,
    collection_model,
    container_model,
    container_view_model,
    image_model,
    new_token_model,
    tag_model,
    tag_models,
    token_model,
    user_model,
)

PREFIX = "/api/v1"
MAX_PAGE = rules.MAX_PAGE
B = TypeVar("B", bound=models.Body)


def refusal(error: ValidationError) -> str:
    """A body's first fault, naming the field: "'name' is required", "'open': input should be a valid boolean"."""
    first = error.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    if first["type"] == "missing":
        return f"'{field}' is required"
    message = first["msg"]
    return f"'{field}': {message[:1].lower()}{message[1:]}"


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

    def body_as(self, kind: type[B], **context: Any) -> B:
        """The JSON body validated by ``kind``; a fault is a 400 that names the field."""
        try:
            return kind.model_validate(self.json_body(), context=context or None)
        except ValidationError as error:
            raise InvalidInput(refusal(error)) from None

    def error_body(self, status: int, code: str, message: str) -> dict[str, Any]:
        return models.ErrorBody.model_construct(code=code, message=message).model_dump()

    def no_content(self) -> None:
        self.set_status(204)
        self.finish()


def me(session: Session, principal: Principal) -> models.User:
    user = session.get(User, require_user(principal).id)
    if user is None:
        raise NotFound("this account no longer exists")
    return user_model(user)


def my_tokens(session: Session, principal: Principal) -> models.TokenList:
    return models.TokenList.model_construct(
        items=[token_model(t) for t in users.list_tokens(session, require_user(principal))]
    )


def new_token(session: Session, principal: Principal, secret_key: bytes, body: models.CreateToken) -> models.NewToken:
    user = require_user(principal)
    if not may_manage_tokens(principal):
        raise Forbidden(token_management_refusal(principal))
    row, token = users.create_token(
        session, user, secret_key, name=body.name, scope=body.scope, expires_in_days=body.expires_in_days
    )
    return new_token_model(row, token)


class UserHandler(ApiHandler):
    async def get(self) -> None:
        self.write_json(await self.read_db(me, self.principal))


class TokensHandler(ApiHandler):
    async def get(self) -> None:
        self.write_json(await self.read_db(my_tokens, self.principal))

    async def post(self) -> None:
        require_user(self.principal)
        body = self.body_as(models.CreateToken)
        self.write_json(await self.write_db(new_token, self.principal, self.registry.secret_key, body), 201)


class TokenHandler(ApiHandler):
    async def delete(self, token_id: str) -> None:
        require_user(self.principal)
        await self.write_db(users.revoke_token, self.principal, row_id(token_id, "token"))
        self.no_content()


def collection_page(
    session: Session, principal: Principal, query: str | None, sort: str, page: int, per_page: int
) -> models.CollectionPage:
    items, total = collections.list_collections(
        session, principal, query=query, sort=sort, offset=(page - 1) * per_page, limit=per_page
    )
    # Plain values validated in one call (see ``container_view_model``): the hot answer of the API.
    return models.CollectionPage.model_validate(
        {
            "items": [collection_fields(s) for s in items],
            "page": page,
            "per_page": per_page,
            "total": total,
            "pages": -(-total // per_page),
        }
    )


def collection_detail(session: Session, principal: Principal, name: str) -> models.CollectionDetail:
    collection = collections.get_visible(session, principal, name)
    return collection_detail_model(
        collections.summarise(session, collection), collections.list_containers(session, collection)
    )


def create_collection(session: Session, principal: Principal, body: models.CreateCollection) -> models.Collection:
    collection = collections.create_collection(
        session, principal, body.name, description=body.description, private=body.private
    )
    return collection_model(collections.summarise(session, collection))


def update_collection(
    session: Session, principal: Principal, name: str, body: models.UpdateCollection
) -> models.Collection:
    collection = collections.update_collection(
        session, principal, name, description=body.description, private=body.private
    )
    return collection_model(collections.summarise(session, collection))


class CollectionsHandler(ApiHandler):
    async def get(self) -> None:
        page, per_page = self.paging()
        await self.write_catalogue(
            collection_page, self.get_query_argument("q", None), self.get_query_argument("sort", "name"), page, per_page
        )

    async def post(self) -> None:
        body = self.body_as(models.CreateCollection)
        created = await self.write_db(create_collection, self.principal, body)
        self.set_header("Location", f"{PREFIX}/collections/{created.name}")
        self.write_json(created, 201)


class CollectionHandler(ApiHandler):
    async def get(self, name: str) -> None:
        await self.write_catalogue(collection_detail, name)

    async def patch(self, name: str) -> None:
        body = self.body_as(models.UpdateCollection)
        self.write_json(await self.write_db(update_collection, self.principal, name, body))

    async def delete(self, name: str) -> None:
        await self.write_db(collections.delete_collection, self.principal, name)
        self.no_content()


def container_list(session: Session, principal: Principal, collection_name: str) -> models.ContainerList:
    collection = collections.get_visible(session, principal, collection_name)
    return models.ContainerList.model_construct(
        items=[container_model(c) for c in collections.list_containers(session, collection)]
    )


def container_detail(session: Session, principal: Principal, collection_name: str, name: str) -> models.ContainerDetail:
    return container_view_model(collections.view_container(session, principal, collection_name, name))


class ContainersHandler(ApiHandler):
    async def get(self, collection_name: str) -> None:
        await self.write_catalogue(container_list, collection_name)


class ContainerHandler(ApiHandler):
    async def get(self, collection_name: str, name: str) -> None:
        await self.write_catalogue(container_detail, collection_name, name)

    async def delete(self, collection_name: str, name: str) -> None:
        await self.write_db(collections.delete_container, self.principal, collection_name, name)
        self.no_content()


def image_detail(
    session: Session, principal: Principal, collection: str, container: str, ref: str, arch: str | None
) -> models.Image:
    return image_model(images.resolve(session, principal, collection, container, ref, arch))


class ImageHandler(ApiHandler):
    async def get(self, collection_name: str, container_name: str, ref: str) -> None:
        await self.write_catalogue(image_detail, collection_name, container_name, ref, self.arch_argument())

    async def delete(self, collection_name: str, container_name: str, ref: str) -> None:
        await self.write_db(
            images.delete_image, self.principal, collection_name, container_name, ref, self.arch_argument()
        )
        self.no_content()


def tag_list(session: Session, principal: Principal, collection_name: str, container_name: str) -> models.TagList:
    collection = collections.get_visible(session, principal, collection_name)
    container = collections.get_container(session, collection, container_name)
    return models.TagList.model_construct(items=tag_models(container))


def put_tag(
    session: Session,
    principal: Principal,
    collection: str,
    container: str,
    tag: str,
    body: models.SetTag,
) -> models.Tag:
    """Point ``tag`` at the body's digest, and freeze or unfreeze it if asked; the freeze is checked before
    the tag moves, so a refused freeze does not leave the tag moved."""
    if body.frozen is not None:
        images.resolve(session, principal, collection, container, body.digest, body.arch, Action.FREEZE)
    row = images.tag_image(session, principal, collection, container, tag, body.digest, body.arch)
    if body.frozen is not None:
        row = images.set_frozen(session, principal, collection, container, tag, body.frozen, row.arch)
    return tag_model(row)


class TagsHandler(ApiHandler):
    async def get(self, collection_name: str, container_name: str) -> None:
        await self.write_catalogue(tag_list, collection_name, container_name)


class TagHandler(ApiHandler):
    async def put(self, collection_name: str, container_name: str, tag: str) -> None:
        body = self.body_as(models.SetTag)
        self.write_json(await self.write_db(put_tag, self.principal, collection_name, container_name, tag, body))

    async def delete(self, collection_name: str, container_name: str, tag: str) -> None:
        await self.write_db(images.untag, self.principal, collection_name, container_name, tag, self.arch_argument())
        self.no_content()


class StatsHandler(ApiHandler):
    async def get(self) -> None:
        days = self.int_argument("days", 30, 1, stats.MAX_DAYS)
        figures = await self.read_db(stats.registry_stats, self.principal, days)
        self.write_json(models.Stats.model_validate(figures))


class ApiNotFoundHandler(ApiHandler):
    async def prepare(self) -> None:
        raise NotFound("no such endpoint")
