"""The registry's figures, defined once for the web pages, the notebook widgets and the Lab panel.

Each function takes plain data, the shapes of the native API's ``/api/v1/stats`` (dicts, or objects with
the same attributes such as the client's models), and returns a ``plotly.graph_objects.Figure``. Nothing
here imports Jupyter, Tornado or the database, so any caller can build a figure from what it has.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import plotly.graph_objects as go

FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"
PUSH_COLOUR = "#2563eb"
PULL_COLOUR = "#16a34a"
BAR_COLOUR = "#4f46e5"
COLOUR_BY = ("pulls", "age")
ROOT_ID = "registry:"  # a colon is in no collection name, so this id cannot clash with one


def value(item: Any, name: str, default: Any = None) -> Any:
    """A field of a dict or an attribute of a model, so that both kinds of caller are served."""
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def layout(fig: go.Figure, title: str, **extra: Any) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 16}},
        font={"family": FONT, "size": 12},
        margin={"l": 16, "r": 16, "t": 48, "b": 16},
        paper_bgcolor="white",
        plot_bgcolor="white",
        **extra,
    )
    return fig


def age_in_days(when: Any, now: dt.datetime) -> float | None:
    if when is None:
        return None
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (now - when).total_seconds() / 86400)


def treemap(containers: Iterable[Any], *, color_by: str = "pulls", now: dt.datetime | None = None) -> go.Figure:
    """Collections split into their containers, each tile sized by its bytes.

    ``color_by="pulls"`` colours tiles by downloads; ``"age"`` by days since the container last changed
    (items then need ``updated``). Containers with no bytes still get a sliver, so that they show.
    """
    if color_by not in COLOUR_BY:
        raise ValueError(f"color_by is one of {', '.join(COLOUR_BY)}, not {color_by!r}")
    now = now or dt.datetime.now(dt.UTC)
    rows = list(containers)
    ids, labels, parents, sizes, colours, hover = [], [], [], [], [], []
    totals: dict[str, list[float]] = {}
    for row in rows:
        collection, name = value(row, "collection"), value(row, "name")
        size = int(value(row, "size", 0) or 0)
        pulls = int(value(row, "downloads", 0) or 0)
        age = age_in_days(value(row, "updated"), now)
        colour = pulls if color_by == "pulls" else (age or 0.0)
        total = totals.setdefault(collection, [0.0, 0.0, 0])
        total[0] += max(size, 1)
        total[1] += colour
        total[2] += 1
        ids.append(f"{collection}/{name}")
        labels.append(name)
        parents.append(collection)
        sizes.append(max(size, 1))
        colours.append(colour)
        age_text = f"{age:.0f} days" if age is not None else "unknown"
        hover.append(f"{collection}/{name}<br>{human_size(size)}<br>{pulls} pulls<br>changed {age_text} ago")
    for collection, (size, colour, count) in totals.items():
        ids.append(collection)
        labels.append(collection)
        parents.append(ROOT_ID)
        sizes.append(size)
        colours.append(colour if color_by == "pulls" else colour / count)
        hover.append(f"{collection}<br>{human_size(size)}<br>{count} containers")
    # One root of our own, coloured as the scale's low end: plotly's implicit root ignores root colours
    # whenever a colour scale is used, and would frame the figure in dark grey.
    ids.append(ROOT_ID)
    labels.append("All collections")
    parents.append("")
    sizes.append(sum(t[0] for t in totals.values()))
    colours.append(0.0)
    hover.append(f"{len(totals)} collections<br>{human_size(sum(t[0] for t in totals.values()))}")
    scale = "Blues" if color_by == "pulls" else "Oranges"
    fig = go.Figure(
        go.Treemap(
            ids=ids,
            labels=labels,
            parents=parents,
            values=sizes,
            branchvalues="total",
            marker={
                "colors": colours,
                "colorscale": scale,
                "colorbar": {"title": {"text": "pulls" if color_by == "pulls" else "days old"}},
                "line": {"width": 1, "color": "white"},
            },
            hovertext=hover,
            hoverinfo="text",
            textinfo="label",
        )
    )
    title = "Registry by size" + (", coloured by pulls" if color_by == "pulls" else ", coloured by age")
    return layout(fig, title if rows else "Registry by size: nothing pushed yet")


def storage(collections: Iterable[Any]) -> go.Figure:
    """Bytes stored per collection, largest first."""
    rows = sorted(collections, key=lambda r: int(value(r, "size", 0) or 0), reverse=True)
    names = [value(r, "name") for r in rows]
    sizes = [int(value(r, "size", 0) or 0) for r in rows]
    fig = go.Figure(
        go.Bar(
            x=sizes,
            y=names,
            orientation="h",
            marker={"color": BAR_COLOUR},
            text=[human_size(s) for s in sizes],
            textposition="auto",
            customdata=[[value(r, "images", 0), value(r, "containers", 0)] for r in rows],
            hovertemplate="%{y}<br>%{text}<br>%{customdata[1]} containers, %{customdata[0]} images<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title=None)
    fig.update_xaxes(title="bytes", gridcolor="#e5e7eb")
    return layout(fig, "Storage per collection", height=max(240, 60 + 28 * len(rows)))


def activity(days: Iterable[Any]) -> go.Figure:
    """Pushes and pulls per day."""
    rows = list(days)
    dates = [str(value(r, "date")) for r in rows]
    fig = go.Figure(
        [
            go.Bar(x=dates, y=[value(r, "pushes", 0) for r in rows], name="pushes", marker={"color": PUSH_COLOUR}),
            go.Bar(x=dates, y=[value(r, "pulls", 0) for r in rows], name="pulls", marker={"color": PULL_COLOUR}),
        ]
    )
    fig.update_xaxes(type="date", gridcolor="#e5e7eb")
    fig.update_yaxes(title="events", gridcolor="#e5e7eb", rangemode="tozero")
    return layout(
        fig,
        "Pushes and pulls per day",
        barmode="group",
        legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
    )


FIGURES = {"treemap": treemap, "storage": storage, "activity": activity}


def from_stats(name: str, stats: Any, **options: Any) -> go.Figure:
    """The figure ``name`` (``treemap``, ``storage`` or ``activity``) of a ``/api/v1/stats`` answer."""
    if name == "treemap":
        return treemap(value(stats, "containers", []), **options)
    if name == "storage":
        return storage(value(stats, "collections", []))
    if name == "activity":
        return activity(value(stats, "activity", []))
    raise ValueError(f"no figure {name!r}: there are {', '.join(FIGURES)}")
