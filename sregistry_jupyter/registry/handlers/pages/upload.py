"""The upload page: a SIF file, a container name and tags, sent from the browser by its own script
(``static/upload.js``) over the resumable tus protocol at ``/api/v1/uploads``, the same endpoint the
Python client uses. The page itself only offers the form; the API decides whether the push is allowed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...access import Principal, Role
from ...orm import Collection, CollectionMember
from .base import PageHandler

CHUNK_SIZE = 8 << 20


def pushable_collections(session: Session, principal: Principal) -> list[str]:
    """The collections the person owns, to suggest in the form (any other name is the API's to judge)."""
    user = principal.user
    if user is None:
        return []
    return list(
        session.scalars(
            select(Collection.name)
            .join(CollectionMember)
            .where(CollectionMember.user_id == user.id, CollectionMember.role == Role.OWNER.value)
            .order_by(Collection.name)
        )
    )


class UploadHandler(PageHandler):
    async def get(self) -> None:
        self.require_person()
        self.render(
            "upload.html",
            owned=await self.read_db(pushable_collections, self.principal),
            collection=self.get_query_argument("collection", ""),
            container=self.get_query_argument("container", ""),
            chunk_size=CHUNK_SIZE,
            max_size=self.registry.max_upload_size,
        )


def routes() -> list[tuple[str, type]]:
    return [(r"/collections/-/upload", UploadHandler)]
