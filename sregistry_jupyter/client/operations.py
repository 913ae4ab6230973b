"""Every registry operation, written once as a plan (see ``steps``) and performed by either client.

``Operations`` turns method calls into plans and hands them to ``_perform``: ``RegistryClient``
returns the plan's result, ``AsyncRegistryClient`` an awaitable of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from .refs import ImageRef, collection_path, parse_ref
from .results import (
    Collection,
    CollectionDetail,
    ContainerDetail,
    Image,
    Member,
    Page,
    ShareLink,
    Stats,
    Tag,
    Team,
    User,
)
from .steps import Call, Plan
from .transfers import Progress, Pull, Push

M = TypeVar("M", bound=BaseModel)
ROLES = ("owner", "contributor")
SORTS = ("name", "-name", "updated", "-updated", "created", "-created", "-size", "-stars")


def one(call: Call, read: Callable[[Any], Any] | None = None) -> Plan[Any]:
    """A plan of a single call whose JSON answer ``read`` turns into the result (None: no result)."""
    response = yield call
    if read is None:
        return None
    return read(response.json())


def model(kind: type[M]) -> Callable[[Any], M]:
    return kind.model_validate


def items(kind: type[M]) -> Callable[[Any], list[M]]:
    return lambda body: [kind.model_validate(item) for item in body["items"]]


def collection_page_call(query: str | None, sort: str, page: int, per_page: int) -> Call:
    params: dict[str, Any] = {"sort": sort, "page": page, "per_page": per_page}
    if query:
        params["q"] = query
    return Call("GET", "/api/v1/collections", params=params)


def all_pages(first_call: Callable[[int], Call]) -> Plan[list[Collection]]:
    """Every collection of a paginated list (for the few places that need the whole list at once)."""
    found: list[Collection] = []
    number = 1
    while True:
        page = yield from one(first_call(number), model(Page))
        found.extend(page.items)
        if number >= page.pages:
            return found
        number += 1


def as_ref(ref: str | ImageRef) -> ImageRef:
    return ref if isinstance(ref, ImageRef) else parse_ref(ref)


class Operations:
    """The registry's native API, one method per thing people do."""

    def _perform(self, plan: Plan[Any], undo: Callable[[BaseException], list[Call]] | None = None) -> Any:
        raise NotImplementedError

    # who and what

    def whoami(self) -> User:
        return self._perform(one(Call("GET", "/api/v1/user"), model(User)))

    def collections(self, query: str | None = None, *, sort: str = "name", page: int = 1, per_page: int = 50) -> Page:
        """One page of the collections the caller may see (``Page.items`` are ``Collection``)."""
        return self._perform(one(collection_page_call(query, sort, page, per_page), model(Page)))

    def search(self, query: str, *, sort: str = "name", page: int = 1, per_page: int = 50) -> Page:
        return self.collections(query, sort=sort, page=page, per_page=per_page)

    def collection(self, name: str) -> CollectionDetail:
        return self._perform(one(Call("GET", collection_path(name)), model(CollectionDetail)))

    def create_collection(self, name: str, *, description: str = "", private: bool | None = None) -> Collection:
        body: dict[str, Any] = {"name": name, "description": description}
        if private is not None:
            body["private"] = private
        return self._perform(one(Call("POST", "/api/v1/collections", json=body), model(Collection)))

    def delete_collection(self, name: str) -> None:
        return self._perform(one(Call("DELETE", collection_path(name))))

    def container(self, collection: str, name: str) -> ContainerDetail:
        """A container with its tags and its images."""
        ref = ImageRef(collection, name)
        return self._perform(one(Call("GET", ref.container_path), model(ContainerDetail)))

    def delete_container(self, collection: str, name: str) -> None:
        return self._perform(one(Call("DELETE", ImageRef(collection, name).container_path)))

    def tags(self, collection: str, container: str) -> list[Tag]:
        path = f"{ImageRef(collection, container).container_path}/tags"
        return self._perform(one(Call("GET", path), items(Tag)))

    def image(self, ref: str | ImageRef) -> Image:
        """An image by ``collection/container:tag`` or ``collection/container@sha256.<hex>``, SIF details included."""
        return self._perform(one(Call("GET", as_ref(ref).image_path), model(Image)))

    def delete(self, ref: str | ImageRef) -> None:
        """Delete the image a tag or digest names (with all its tags)."""
        return self._perform(one(Call("DELETE", as_ref(ref).image_path)))

    def tag(self, ref: str | ImageRef, tag: str, *, frozen: bool | None = None) -> Tag:
        """Point ``tag`` at the image ``ref`` names (optionally freezing it)."""
        return self._perform(self._tag_plan(as_ref(ref), tag, frozen))

    def untag(self, collection: str, container: str, tag: str) -> None:
        path = f"{ImageRef(collection, container).container_path}/tags/{quote(tag)}"
        return self._perform(one(Call("DELETE", path)))

    def freeze(self, ref: str | ImageRef, frozen: bool = True) -> Tag:
        """Freeze (or thaw) the tag ``ref`` names, so that nobody can move it."""
        parsed = as_ref(ref)
        if not parsed.tag:
            parsed = ImageRef(parsed.collection, parsed.container, "latest", parsed.digest)
        return self._perform(self._tag_plan(parsed, parsed.tag, frozen))

    def _tag_plan(self, ref: ImageRef, tag: str, frozen: bool | None) -> Plan[Tag]:
        image = yield from one(Call("GET", ref.image_path), model(Image))
        body: dict[str, Any] = {"digest": image.digest, "arch": image.arch}
        if frozen is not None:
            body["frozen"] = frozen
        path = f"{ref.container_path}/tags/{quote(tag)}"
        return (yield from one(Call("PUT", path, json=body), model(Tag)))

    # working together

    def members(self, collection: str) -> list[Member]:
        return self._perform(one(Call("GET", f"{collection_path(collection)}/members"), items(Member)))

    def add_member(self, collection: str, user: str, role: str = "contributor") -> Member:
        """Share a collection with someone: ``owner`` (push and manage) or ``contributor`` (see and pull)."""
        body = {"user": user, "role": role}
        return self._perform(one(Call("POST", f"{collection_path(collection)}/members", json=body), model(Member)))

    def remove_member(self, collection: str, user: str) -> None:
        path = f"{collection_path(collection)}/members/{quote(user)}"
        return self._perform(one(Call("DELETE", path)))

    def teams(self) -> list[Team]:
        return self._perform(one(Call("GET", "/api/v1/teams"), items(Team)))

    def teammates(self) -> list[str]:
        """Everyone who shares a team with the caller: the people an owner may give a role to."""
        return self._perform(self._teammates_plan())

    def _teammates_plan(self) -> Plan[list[str]]:
        me = yield from one(Call("GET", "/api/v1/user"), model(User))
        teams = yield from one(Call("GET", "/api/v1/teams"), items(Team))
        names = {m.user for t in teams if any(m.user == me.name for m in t.members) for m in t.members}
        names.discard(me.name)
        return sorted(names)

    def share_link(self, ref: str | ImageRef, days: int = 7) -> ShareLink:
        """A link anyone can download the image with, until it expires after ``days``."""
        path = f"{as_ref(ref).image_path}/shares"
        return self._perform(one(Call("POST", path, json={"days": days}), model(ShareLink)))

    def star(self, collection: str) -> Collection:
        return self._perform(one(Call("PUT", f"{collection_path(collection)}/star"), model(Collection)))

    def unstar(self, collection: str) -> Collection:
        return self._perform(one(Call("DELETE", f"{collection_path(collection)}/star"), model(Collection)))

    def stars(self) -> list[Collection]:
        return self._perform(one(Call("GET", "/api/v1/user/stars"), items(Collection)))

    def stats(self, days: int = 30) -> Stats:
        """Sizes, counts and daily pushes and pulls of what the caller may see."""
        return self._perform(one(Call("GET", "/api/v1/stats", params={"days": days}), model(Stats)))

    def container_usage(self, days: int = 30) -> list[dict[str, Any]]:
        """Every visible container's bytes and pulls (from ``stats``) with when it last changed, for plots."""
        return self._perform(self._usage_plan(days))

    def _usage_plan(self, days: int) -> Plan[list[dict[str, Any]]]:
        stats = yield from one(Call("GET", "/api/v1/stats", params={"days": days}), model(Stats))
        updated: dict[tuple[str, str], Any] = {}
        for usage in stats.collections:
            detail = yield from one(Call("GET", collection_path(usage.name)), model(CollectionDetail))
            updated.update({(usage.name, c.name): c.updated for c in detail.containers_list})
        return [{**c.model_dump(), "updated": updated.get((c.collection, c.name))} for c in stats.containers]

    def pushable(self) -> list[Collection]:
        """The collections the caller may push to: those they own, or every one for the registry's staff."""
        return self._perform(self._pushable_plan())

    def _pushable_plan(self) -> Plan[list[Collection]]:
        me = yield from one(Call("GET", "/api/v1/user"), model(User))
        found = yield from all_pages(lambda n: collection_page_call(None, "name", n, 200))
        return [c for c in found if me.admin or me.staff or me.name in c.owners]

    # moving bytes

    def push(
        self,
        path: str | Path,
        ref: str | ImageRef,
        *,
        tags: Iterable[str] = (),
        description: str = "",
        progress: Progress | None = None,
    ) -> Image:
        """Upload a SIF file as ``collection/container:tag`` (and ``tags``), skipping bytes the registry has.

        ``progress(done, total)`` is called as bytes go out. The upload resumes after a cut connection;
        a push that fails or is interrupted leaves nothing in the registry.
        """
        job = Push(Path(path), as_ref(ref), list(tags), description, progress)
        return self._perform(job.plan(), job.abort_calls)

    def pull(self, ref: str | ImageRef, path: str | Path = ".", *, progress: Progress | None = None) -> Path:
        """Download an image to ``path`` (a file, or a folder for ``<container>_<tag>.sif``); its path.

        The sha256 is checked before the file appears; a cut download resumes, now or in a later pull.
        """
        job = Pull(as_ref(ref), Path(path), progress)
        return self._perform(job.plan(), job.abandon)
