"""``PushWidget``: push a SIF file from the workspace, with tags, a progress bar and the result."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import ipywidgets as w
import traitlets

from ..figures import human_size
from .background import Background, default_client, message_html

MAX_FILES = 500


def sif_files(root: Path) -> list[str]:
    """SIF files under ``root`` (hidden folders skipped), as paths relative to it, at most ``MAX_FILES``."""
    found: list[str] = []
    for folder, folders, files in os.walk(root):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in sorted(files):
            if name.endswith(".sif") and not name.startswith("."):
                found.append(str((Path(folder) / name).relative_to(root)))
                if len(found) >= MAX_FILES:
                    return found
    return found


class PushWidget(w.VBox):
    """Choose a file, a collection you may push to, a container and tags; ``result`` is the pushed image."""

    result = traitlets.Any(None)

    def __init__(self, client: Any = None, *, root: str | Path = ".", **kwargs: Any) -> None:
        self.client = default_client(client)
        self.root = Path(root).resolve()
        self.file = w.Dropdown(options=[], description="File", layout=w.Layout(width="420px"))
        self.collection = w.Combobox(
            placeholder="collection", description="Collection", ensure_option=False, layout=w.Layout(width="420px")
        )
        self.container = w.Text(placeholder="container", description="Container", layout=w.Layout(width="420px"))
        self.tags = w.Text(
            value="latest", description="Tags", placeholder="latest, v1.0", layout=w.Layout(width="420px")
        )
        self.push_button = w.Button(description="Push", icon="upload", button_style="primary")
        self.rescan_button = w.Button(description="Rescan", icon="refresh")
        self.progress = w.FloatProgress(value=0, min=0, max=1, layout=w.Layout(width="420px", visibility="hidden"))
        self.progress_text = w.HTML()
        self.status = w.HTML()
        self.background = Background(self.status)
        super().__init__(
            [
                self.file,
                self.collection,
                self.container,
                self.tags,
                w.HBox([self.push_button, self.rescan_button]),
                w.HBox([self.progress, self.progress_text]),
                self.status,
            ],
            **kwargs,
        )
        self.file.observe(self._file_chosen, names="value")
        self.push_button.on_click(lambda _: self.push())
        self.rescan_button.on_click(lambda _: self.rescan())
        self.rescan()
        self.background.run(self.client.pushable, self._pushable)

    def rescan(self) -> None:
        found = sif_files(self.root)
        self.file.options = found
        if found and self.file.value is None:
            self.file.value = found[0]
        self._suggest_container(self.file.value)

    def _pushable(self, collections: list[Any]) -> None:
        self.collection.options = [c.name for c in collections]
        if not self.collection.value and collections:
            self.collection.value = collections[0].name

    def _file_chosen(self, change: dict[str, Any]) -> None:
        self._suggest_container(change["new"])

    def _suggest_container(self, file: str | None) -> None:
        if file and not self.container.value:
            self.container.value = Path(file).stem.lower().replace(" ", "-")

    def _progress(self, done: int, total: int) -> None:
        self.progress.max = max(total, 1)
        self.progress.value = done
        self.progress_text.value = f"{human_size(done)} of {human_size(total)}"

    def push(self) -> None:
        tags = [t.strip() for t in self.tags.value.split(",") if t.strip()] or ["latest"]
        if not self.file.value:
            self.status.value = message_html("choose a .sif file from the workspace first", "error")
            return
        ref = f"{self.collection.value.strip()}/{self.container.value.strip()}:{tags[0]}"
        source = self.root / self.file.value
        self.push_button.disabled = True
        self.progress.bar_style = ""
        self.progress.layout.visibility = "visible"

        def call() -> Any:
            try:
                return self.client.push(source, ref, tags=tags[1:], progress=self._progress)
            finally:
                self.push_button.disabled = False

        self.background.run(call, self._pushed, f"Pushing {self.file.value} to {ref}…")

    def _pushed(self, image: Any) -> None:
        self.result = image
        self.progress.bar_style = "success"
        self.progress.value = self.progress.max
        where = f"{image.collection}/{image.container}:{', '.join(image.tags)}"
        self.status.value = message_html(f"Pushed {where} ({image.digest[:19]}…)", "ok") + (
            f"<div><code>{html.escape(f'sregistry-jupyter pull {image.collection}/{image.container}@{image.digest}')}"
            "</code></div>"
        )
