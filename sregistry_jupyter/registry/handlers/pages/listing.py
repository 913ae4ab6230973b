"""Pagination links that keep the rest of the page's query (search, sort)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from ...services.browse import Page

WINDOW = 2


@dataclass(frozen=True)
class PageLink:
    label: str
    url: str | None
    current: bool = False


def page_links(path: str, query: dict[str, str], page: Page) -> list[PageLink]:
    """Previous, the first, a window around the current page, the last, next; gaps are ``…``."""
    if page.pages <= 1:
        return []

    def url(number: int) -> str:
        values = {k: v for k, v in query.items() if v and k != "page"}
        if number > 1:
            values["page"] = str(number)
        return path + ("?" + urlencode(values) if values else "")

    shown = sorted({1, page.pages, *range(max(1, page.number - WINDOW), min(page.pages, page.number + WINDOW) + 1)})
    links = [PageLink("Previous", url(page.number - 1))] if page.number > 1 else []
    last = 0
    for number in shown:
        if number - last > 1:
            links.append(PageLink("…", None))
        links.append(PageLink(str(number), url(number), number == page.number))
        last = number
    if page.number < page.pages:
        links.append(PageLink("Next", url(page.number + 1)))
    return links
