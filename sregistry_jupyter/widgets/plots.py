"""``RegistryPlots``: the registry's figures (``sregistry_jupyter.figures``) in a notebook, from live data."""

from __future__ import annotations

import json
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go

from .. import figures
from .background import Background, default_client

PLOTLY_MIME = "application/vnd.plotly.v1+json"


def figure_output(fig: go.Figure) -> dict[str, Any]:
    """A display_data output of the figure, rendered by plotly's own renderer in JupyterLab and Notebook 7."""
    return {
        "output_type": "display_data",
        "data": {PLOTLY_MIME: json.loads(fig.to_json()), "text/plain": f"<{fig.layout.title.text}>"},
        "metadata": {},
    }


class RegistryPlots(w.VBox):
    """Treemap, storage and activity of what the person may see; ``figure`` holds the one shown."""

    def __init__(self, client: Any = None, *, days: int = 30, **kwargs: Any) -> None:
        self.client = default_client(client)
        self.choice = w.ToggleButtons(
            options=[("Treemap", "treemap"), ("Storage", "storage"), ("Activity", "activity")], value="treemap"
        )
        self.color_by = w.Dropdown(
            options=[("by pulls", "pulls"), ("by age", "age")],
            value="pulls",
            description="Colour",
            layout=w.Layout(width="200px"),
        )
        self.days = w.IntSlider(value=days, min=7, max=max(90, days), description="Days", continuous_update=False)
        self.refresh_button = w.Button(description="Refresh", icon="refresh", layout=w.Layout(width="100px"))
        self.status = w.HTML()
        self.output = w.Output(layout=w.Layout(min_height="420px"))
        self.figure: go.Figure | None = None
        self.stats: Any = None
        self.usage: list[dict[str, Any]] = []
        self.background = Background(self.status)
        super().__init__(
            [w.HBox([self.choice, self.color_by, self.refresh_button]), self.days, self.status, self.output],
            **kwargs,
        )
        self.choice.observe(lambda _: self.draw(), names="value")
        self.color_by.observe(lambda _: self.draw(), names="value")
        self.days.observe(lambda _: self.refresh(), names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        def load() -> tuple[Any, list[dict[str, Any]]]:
            return self.client.stats(self.days.value), self.client.container_usage(self.days.value)

        self.background.run(load, self._loaded, "Loading statistics…")

    def _loaded(self, loaded: tuple[Any, list[dict[str, Any]]]) -> None:
        self.stats, self.usage = loaded
        self.draw()

    def draw(self) -> None:
        if self.stats is None:
            return
        name = self.choice.value
        self.color_by.disabled = name != "treemap"
        if name == "treemap":
            self.figure = figures.treemap(self.usage, color_by=self.color_by.value)
        else:
            self.figure = figures.from_stats(name, self.stats)
        self.output.outputs = (figure_output(self.figure),)
