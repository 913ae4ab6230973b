"""The collections list, a collection's page, starring from either, and the collection's badge."""

from __future__ import annotations

from xml.sax.saxutils import escape

from ...errors import InvalidInput
from ...services import browse, stars
from ...services.collections import SORTS, SUMMARY_SORTS
from .base import PageHandler, safe_next
from .listing import page_links
from .usage import usage

LIST_SORTS = {"name": "Name", "-updated": "Recently updated", "-size": "Largest", "-stars": "Most starred"}


class CollectionsHandler(PageHandler):
    """Every collection the viewer may see: search, sort, a page at a time, starring from the list."""

    async def get(self) -> None:
        query = self.get_query_argument("q", "").strip()
        sort = self.get_query_argument("sort", "name")
        if sort not in SORTS and sort not in SUMMARY_SORTS:
            raise InvalidInput(f"invalid sort {sort!r}: use one of {', '.join(LIST_SORTS)}")
        items, page, starred, creates = await self.read_db(
            browse.collection_list,
            self.principal,
            query or None,
            sort,
            self.page_number(),
            self.registry.default_page_size,
        )
        self.render(
            "collections.html",
            items=items,
            page=page,
            starred=starred,
            creates=creates,
            query=query,
            sort=sort,
            sorts=LIST_SORTS,
            links=page_links("/collections", {"q": query, "sort": "" if sort == "name" else sort}, page),
        )


class CollectionHandler(PageHandler):
    """A collection: its containers (a page at a time), badge, star, and how to use it from every client."""

    async def get(self, name: str) -> None:
        view = await self.read_db(
            browse.collection_view, self.principal, name, self.page_number(), self.registry.default_page_size
        )
        first = view.containers[0] if view.containers else None
        tag = next((t.name for t in first.tags), "latest") if first else "latest"
        user = self.principal.user
        self.render(
            "collection.html",
            view=view,
            collection=view.summary.collection,
            base=self.base_url(),
            links=page_links(f"/collections/{name}", {}, view.page),
            usage=usage(
                base=self.base_url(),
                registry_name=self.registry.name,
                collection=name,
                container=first.container.name if first else "container",
                tag=tag,
                entity=(view.summary.owners or ["library"])[0],
                username=user.name if user else None,
            ),
        )


class StarHandler(PageHandler):
    """Star or unstar (the form says which), then go back to where the button was."""

    async def submit(self, form: dict[str, str], name: str) -> None:
        self.require_person()
        work = stars.unstar if form.get("star") == "0" else stars.star
        await self.write_db(work, self.principal, name)
        self.redirect(safe_next(form.get("next"), f"/collections/{name}"), status=303)


BADGE_CHAR = 6.6  # average advance of 11 px Verdana, close enough to size the badge's halves


def badge_svg(left: str, right: str) -> str:
    """A flat two-part badge, as shields.io draws them, with both texts escaped."""
    lw, rw = int(len(left) * BADGE_CHAR + 12), int(len(right) * BADGE_CHAR + 12)
    left_text, right_text = escape(left), escape(right)
    width = lw + rw
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{left_text}: {right_text}"><title>{left_text}: {right_text}</title>'
        f'<rect width="{lw}" height="20" rx="3" fill="#17233b"/>'
        f'<rect x="{lw}" width="{rw}" height="20" rx="3" fill="#2450a6"/>'
        f'<rect x="{lw}" width="4" height="20" fill="#2450a6"/>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{lw / 2}" y="14">{left_text}</text><text x="{lw + rw / 2}" y="14">{right_text}</text></g></svg>'
    )


class BadgeHandler(PageHandler):
    """``/collections/<name>/-/badge.svg``: the collection's name and image count, for READMEs. A private
    collection's badge shows only to those who may see it (others get the page's 404)."""

    async def get(self, name: str) -> None:
        summary = await self.read_db(browse.badge_collection, self.principal, name)
        self.set_header("Content-Type", "image/svg+xml")
        self.set_header("Cache-Control", "no-cache" if not summary.collection.private else "no-store")
        images = f"{summary.images} image{'s' if summary.images != 1 else ''}"
        self.finish(badge_svg(self.registry.name.lower()[:40] or "registry", f"{name} · {images}"))


def routes() -> list[tuple[str, type]]:
    segment = r"([a-z0-9][^/]*)"
    return [
        (r"/collections/?", CollectionsHandler),
        (rf"/collections/{segment}/?", CollectionHandler),
        (rf"/collections/{segment}/-/star", StarHandler),
        (rf"/collections/{segment}/-/badge.svg", BadgeHandler),
    ]
