"""A container's page: its tags and images with what each SIF says, copyable pull commands, and for its
owners the forms to tag, untag, freeze, unfreeze, delete and share (each one a service call that
``access`` decides, exactly as the native API's own endpoints do)."""

from __future__ import annotations

import json
from typing import Any

from ...errors import InvalidInput, RegistryError
from ...names import validate_digest
from ...services import browse, images, shares
from .base import PageHandler
from .listing import page_links
from .usage import usage


def label_text(value: Any) -> str:
    """A SIF label's value as text (labels are usually strings, but the JSON may hold anything)."""
    return value if isinstance(value, str) else json.dumps(value)


def share_days(raw: str | None, max_days: int) -> int:
    raw = (raw or "").strip()
    if not raw.isdigit():
        raise InvalidInput(f"a share link lasts a whole number of days, from 1 to {max_days}")
    return shares.share_days(int(raw), max_days)


class ContainerHandler(PageHandler):
    async def get(self, collection: str, name: str) -> None:
        await self.show(collection, name)

    async def show(
        self,
        collection: str,
        name: str,
        *,
        message: str | None = None,
        error: str | None = None,
        share_url: str | None = None,
        status: int = 200,
    ) -> None:
        view = await self.read_db(
            browse.container_view,
            self.principal,
            collection,
            name,
            self.page_number(),
            self.registry.default_page_size,
        )
        tag = next((t.name for t in view.tags), "latest")
        entity = view.owners[0] if view.owners else "library"
        self.set_status(status)
        self.render(
            "container.html",
            view=view,
            collection=view.collection,
            container=view.container,
            entity=entity,
            base=self.base_url(),
            label_text=label_text,
            message=message,
            error=error,
            share_url=share_url,
            max_share_days=self.registry.max_share_days,
            links=page_links(f"/collections/{collection}/{name}", {}, view.page),
            usage=usage(
                base=self.base_url(),
                registry_name=self.registry.name,
                collection=collection,
                container=name,
                tag=tag,
                entity=entity,
                username=self.principal.user.name if self.principal.user else None,
            ),
        )

    async def submit(self, form: dict[str, str], collection: str, name: str) -> None:
        """One owner action per form (``op``); the page is shown again with what happened."""
        self.require_person()
        op = form.get("op", "")
        tag = form.get("tag", "").strip()
        arch = form.get("arch") or None
        principal = self.principal
        try:
            if op == "tag":
                digest = validate_digest(form.get("digest", ""))
                await self.write_db(images.tag_image, principal, collection, name, tag, digest, arch)
                message = f"Tagged the image as {tag}."
            elif op == "untag":
                await self.write_db(images.untag, principal, collection, name, tag, arch)
                message = f"Removed the tag {tag}."
            elif op in ("freeze", "unfreeze"):
                await self.write_db(images.set_frozen, principal, collection, name, tag, op == "freeze", arch)
                message = f"{'Froze' if op == 'freeze' else 'Unfroze'} the tag {tag}."
            elif op == "delete":
                digest = validate_digest(form.get("digest", ""))
                await self.write_db(images.delete_image, principal, collection, name, digest, arch)
                message = f"Deleted the image {digest}."
            elif op == "share":
                digest = validate_digest(form.get("digest", ""))
                days = share_days(form.get("days"), self.registry.max_share_days)
                _, _, token = await self.write_db(
                    shares.create_share, principal, collection, name, digest, days=days, arch=arch
                )
                link = self.base_url() + shares.share_link(token)
                await self.show(
                    collection, name, message=f"A share link valid for {days} day(s):", share_url=link, status=201
                )
                return
            else:
                raise InvalidInput(f"unknown action {op!r}")
        except RegistryError as refused:
            await self.show(collection, name, error=refused.message, status=refused.status)
            return
        await self.show(collection, name, message=message)


def routes() -> list[tuple[str, type]]:
    segment = r"([a-z0-9][^/]*)"
    return [(rf"/collections/{segment}/{segment}/?", ContainerHandler)]
