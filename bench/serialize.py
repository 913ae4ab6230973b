"""Rendering benchmark: a page of 100 collections rendered with the shared models, against the dictionaries
written by hand that the native API used before them (the baseline, kept here as it was), in the same run.

Each way builds the page's JSON text from the same rows (transient ORM objects, as a service returns them):

- ``dicts``: the old serialisers (a dict per row) and ``json.dumps``: the baseline;
- ``construct``: ``model_construct`` (no validation: the rows are the registry's own) and ``model_dump_json``,
  which is what the registry does;
- ``construct+dumps``: ``model_construct``, ``model_dump(mode="json")`` and ``json.dumps``;
- ``validate``: ``model_validate`` of the dicts, then ``model_dump_json`` (what validating answers would cost);
- ``adapter``: a ``TypeAdapter`` of the page, validating the dicts and dumping to JSON.

Every way must produce the same JSON, or the run is invalid. The script reports the median time per page and
its ratio to the baseline.

    python bench/serialize.py [--rows 100] [--rounds 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter

from sregistry_jupyter import models
from sregistry_jupyter.registry.handlers.serialize import collection_model
from sregistry_jupyter.registry.orm import Collection
from sregistry_jupyter.registry.services.collections import CollectionSummary


def rows(count: int) -> list[CollectionSummary]:
    now = dt.datetime(2024, 5, 1, 12, 0, 0, 123456)
    return [
        CollectionSummary(
            collection=Collection(
                name=f"lab-{i}",
                description=f"Images of lab {i}" * 3,
                private=i % 3 == 0,
                created_at=now - dt.timedelta(days=i),
                updated_at=now,
            ),
            owners=["alice", f"owner{i}"],
            containers=i % 7,
            images=i % 11,
            size=i * 1_000_003,
            stars=i % 5,
        )
        for i in range(count)
    ]


def old_when(value: dt.datetime | None) -> str | None:
    return value.replace(microsecond=0).isoformat() + "Z" if value else None


def collection_dict(summary: CollectionSummary) -> dict[str, Any]:
    """The hand-written serialiser the models replaced, as it was: the baseline."""
    c = summary.collection
    return {
        "name": c.name,
        "description": c.description,
        "private": c.private,
        "owners": summary.owners,
        "containers": summary.containers,
        "images": summary.images,
        "size": summary.size,
        "stars": summary.stars,
        "created": old_when(c.created_at),
        "updated": old_when(c.updated_at),
    }


def page_fields(items: list[Any], total: int) -> dict[str, Any]:
    return {"items": items, "page": 1, "per_page": len(items), "total": total, "pages": 1}


def with_dicts(found: list[CollectionSummary]) -> str:
    return json.dumps(page_fields([collection_dict(s) for s in found], len(found)), default=str)


def with_construct(found: list[CollectionSummary]) -> str:
    page = models.CollectionPage.model_construct(**page_fields([collection_model(s) for s in found], len(found)))
    return page.model_dump_json()


def with_construct_and_dumps(found: list[CollectionSummary]) -> str:
    page = models.CollectionPage.model_construct(**page_fields([collection_model(s) for s in found], len(found)))
    return json.dumps(page.model_dump(mode="json"))


def with_validate(found: list[CollectionSummary]) -> str:
    body = page_fields([collection_dict(s) for s in found], len(found))
    return models.CollectionPage.model_validate(body).model_dump_json()


PAGE = TypeAdapter(models.CollectionPage)


def with_adapter(found: list[CollectionSummary]) -> str:
    body = page_fields([collection_dict(s) for s in found], len(found))
    return PAGE.dump_json(PAGE.validate_python(body)).decode()


WAYS: dict[str, Callable[[list[CollectionSummary]], str]] = {
    "dicts": with_dicts,
    "construct": with_construct,
    "construct+dumps": with_construct_and_dumps,
    "validate": with_validate,
    "adapter": with_adapter,
}


def median_seconds(
    render: Callable[[list[CollectionSummary]], str], found: list[CollectionSummary], rounds: int
) -> float:
    """The median of ``rounds`` renderings, the ways interleaved by the caller so that drift hits them alike."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        render(found)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2000)
    options = parser.parse_args(argv)
    found = rows(options.rows)
    expected = json.loads(with_dicts(found))
    for name, render in WAYS.items():
        if json.loads(render(found)) != expected:
            print(f"{name}: renders different JSON from the baseline", file=sys.stderr)
            return 1
    figures: dict[str, list[float]] = {name: [] for name in WAYS}
    for _ in range(5):
        for name, render in WAYS.items():
            figures[name].append(median_seconds(render, found, options.rounds // 5))
    baseline = statistics.median(figures["dicts"])
    print(f"a page of {options.rows} collections, median of {options.rounds} renderings each")
    for name in WAYS:
        seconds = statistics.median(figures[name])
        print(f"  {name:16} {seconds * 1e6:9.1f} µs/page   ratio to dicts {seconds / baseline:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
