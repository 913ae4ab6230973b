"""The registry in pictures: a treemap of collections and containers sized by bytes, storage per
collection, and pushes and pulls over time.

The figures are ``sregistry_jupyter.figures``' (the same definitions the notebook widgets draw) built from
``services.stats`` over what the viewer may see, and drawn in the browser by the plotly.js that the
installed ``plotly`` package bundles, served by the registry itself. Each figure travels as JSON in a
non-executable ``<script type="application/json">`` element; ``static/plots.js`` draws it, so no inline
script is needed. A table under each figure carries the same numbers for readers without a canvas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly
from sqlalchemy.orm import Session

from .... import figures
from ...access import Principal
from ...services import stats
from ..security import StaticFileHandler
from .base import PageHandler

PLOTLY_DIR = Path(plotly.__file__).parent / "package_data"
DAYS = (7, 30, 90, 365)


def figure_data(session: Session, principal: Principal, days: int) -> dict[str, Any]:
    """What the page's figures need, over what ``principal`` may see."""
    found = stats.registry_stats(session, principal, days)
    return {**found, "containers": stats.container_usage(session, principal, found)}


class PlotsPage(PageHandler):
    async def get(self) -> None:
        color_by = self.get_query_argument("color", "pulls")
        color_by = color_by if color_by in figures.COLOUR_BY else "pulls"
        raw_days = self.get_query_argument("days", "30")
        days = int(raw_days) if raw_days.isdigit() and int(raw_days) in DAYS else 30
        data = await self.read_db(figure_data, self.principal, days)
        drawn = {
            "treemap": figures.treemap(data["containers"], color_by=color_by),
            "storage": figures.storage(data["collections"]),
            "activity": figures.activity(data["activity"]),
        }
        self.render(
            "plots.html",
            data=data,
            color_by=color_by,
            days=days,
            choices=DAYS,
            figures={name: figure.to_json() for name, figure in drawn.items()},
            human_size=figures.human_size,  # the figures' units, so the page and its figures agree
        )


class PlotlyScript(StaticFileHandler):
    """plotly.js from the installed ``plotly`` package: the registry sends no one to a CDN."""

    def initialize(self) -> None:  # type: ignore[override]
        super().initialize(path=str(PLOTLY_DIR))


def routes() -> list[tuple[str, type]]:
    return [(r"/plots", PlotsPage), (r"/vendor/plotly/(plotly\.min\.js)", PlotlyScript)]
