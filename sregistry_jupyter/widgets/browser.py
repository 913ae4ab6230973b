"""``CollectionBrowser``: search collections, pick one, see its containers and tags and an image's SIF details."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
import traitlets

from ..figures import human_size
from .background import Background, default_client

LIST_LAYOUT = w.Layout(width="240px", height="220px")


def image_details_html(image: Any) -> str:
    """The facts people check before pulling: size, digest, arch, signature, labels, definition file."""
    rows = [
        ("Image", f"{image.collection}/{image.container}"),
        ("Tags", ", ".join(image.tags) or "none"),
        ("Digest", image.digest),
        ("Size", human_size(image.size)),
        ("Architecture", image.arch),
        ("Signed", "yes" if image.signed else "no"),
        ("Pulls", str(image.downloads)),
        ("Uploaded", image.uploaded.strftime("%Y-%m-%d %H:%M UTC") if image.uploaded else ""),
    ]
    sif = image.sif
    if sif is not None:
        parts = ", ".join(f"{p.name or p.parttype} ({p.fstype}, {human_size(p.size)})" for p in sif.partitions)
        rows.append(("Partitions", parts or "none"))
        for key, value in sorted((sif.labels or {}).items()):
            rows.append((f"Label {key}", str(value)))
    table = "".join(
        f'<tr><th style="text-align:left;padding-right:12px;vertical-align:top">{html.escape(k)}</th>'
        f'<td style="font-family:monospace;word-break:break-all">{html.escape(v)}</td></tr>'
        for k, v in rows
    )
    deffile = ""
    if sif is not None and sif.deffile:
        deffile = (
            '<details open><summary>Definition file</summary><pre style="background:#f6f8fa;padding:6px;'
            f'max-height:180px;overflow:auto">{html.escape(sif.deffile)}</pre></details>'
        )
    pull = f"sregistry-jupyter pull {image.collection}/{image.container}@{image.digest}"
    return f"<table>{table}</table>{deffile}<div>Pull: <code>{html.escape(pull)}</code></div>"


class CollectionBrowser(w.VBox):
    """Browse the registry; ``selected_collection`` and ``selected_image`` (a ref) follow the selection."""

    selected_collection = traitlets.Unicode("")
    selected_image = traitlets.Unicode("")

    def __init__(self, client: Any = None, **kwargs: Any) -> None:
        self.client = default_client(client)
        self.query = w.Text(
            placeholder="search collections", continuous_update=False, layout=w.Layout(width="300px")
        )
        self.search_button = w.Button(description="Search", icon="search", layout=w.Layout(width="100px"))
        self.collections = w.Select(options=[], description="", layout=LIST_LAYOUT)
        self.containers = w.Select(options=[], layout=LIST_LAYOUT)
        self.tags = w.Select(options=[], layout=LIST_LAYOUT)
        self.details = w.HTML(layout=w.Layout(width="100%"))
        self.status = w.HTML()
        self.background = Background(self.status)
        self.image: Any = None
        columns = w.HBox(
            [
                w.VBox([w.HTML("<b>Collections</b>"), self.collections]),
                w.VBox([w.HTML("<b>Containers</b>"), self.containers]),
                w.VBox([w.HTML("<b>Tags</b>"), self.tags]),
            ]
        )
        super().__init__([w.HBox([self.query, self.search_button]), self.status, columns, self.details], **kwargs)
        self.search_button.on_click(lambda _: self.search())
        self.query.observe(lambda _: self.search(), names="value")
        self.collections.observe(self._collection_chosen, names="value")
        self.containers.observe(self._container_chosen, names="value")
        self.tags.observe(self._tag_chosen, names="value")
        self.search()

    def search(self) -> None:
        query = self.query.value.strip() or None
        self.background.run(lambda: self.client.collections(query, per_page=100), self._found, "Searching…")

    def _found(self, page: Any) -> None:
        self.collections.options = [c.name for c in page.items]
        shown = f"{page.total} collection{'s' if page.total != 1 else ''}"
        self.status.value = shown if page.total <= len(page.items) else f"{shown}, first {len(page.items)} shown"

    def _collection_chosen(self, change: dict[str, Any]) -> None:
        name = change["new"]
        self.selected_collection = name or ""
        self.containers.options, self.tags.options, self.details.value = [], [], ""
        if name:
            self.background.run(lambda: self.client.collection(name), self._collection_loaded, f"Opening {name}…")

    def _collection_loaded(self, detail: Any) -> None:
        self.containers.options = [c.name for c in detail.containers_list]

    def _container_chosen(self, change: dict[str, Any]) -> None:
        name, collection = change["new"], self.collections.value
        self.tags.options, self.details.value = [], ""
        if name and collection:
            self.background.run(lambda: self.client.container(collection, name), self._container_loaded)

    def _container_loaded(self, container: Any) -> None:
        self.tags.options = [t.name for t in container.tags]

    def _tag_chosen(self, change: dict[str, Any]) -> None:
        tag = change["new"]
        if not tag:
            return
        ref = f"{self.collections.value}/{self.containers.value}:{tag}"
        self.background.run(lambda: self.client.image(ref), self._image_loaded)

    def _image_loaded(self, image: Any) -> None:
        self.image = image
        self.details.value = image_details_html(image)
        self.selected_image = f"{image.collection}/{image.container}:{self.tags.value}"
