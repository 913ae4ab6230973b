"""Fill a registry's database with many images quickly, for the metadata benchmark.

Rows go in with bulk ``INSERT``s in large batches (no ORM objects, no per-row round trips), so a million
images take seconds to a minute rather than hours. The shape is a lab-sized registry grown large: one
collection per ``PER_COLLECTION`` images, ten images per container, every image tagged ``v<n>`` and the
newest of each container ``latest``; a tenth of the collections are private. Container names are words
from ``WORDS`` with a number, so that a search for a word finds a few percent of the containers (the
realistic case that an index must make cheap) and a search for a full name finds one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, text

from sregistry_jupyter.registry.orm import (
    Blob,
    Collection,
    CollectionMember,
    Container,
    Image,
    Tag,
    User,
)

PER_COLLECTION = 1000
PER_CONTAINER = 10
BATCH = 20_000
WORDS = [
    "avocado",
    "banana",
    "cherry",
    "durian",
    "elder",
    "fig",
    "grape",
    "hazel",
    "iris",
    "jujube",
    "kiwi",
    "lemon",
    "mango",
    "nectar",
    "olive",
    "papaya",
    "quince",
    "raisin",
    "sloe",
    "tamarind",
    "ugli",
    "vanilla",
    "walnut",
    "xigua",
    "yam",
    "zucchini",
    "almond",
    "basil",
    "caraway",
    "dill",
    "endive",
    "fennel",
    "ginger",
    "horseradish",
    "ivy",
    "juniper",
    "kale",
    "lovage",
    "mint",
    "nutmeg",
    "oregano",
    "parsley",
    "quinoa",
    "rosemary",
    "sage",
    "thyme",
    "umbel",
    "valerian",
    "wasabi",
    "yarrow",
    "zedoary",
]
SIZE = 50 << 20
WHEN = dt.datetime(2026, 1, 1)


@dataclass(frozen=True)
class Seeded:
    """What the benchmark's requests ask for: an existing container and words to search."""

    images: int
    collection: str
    container: str
    word: str


def collection_name(number: int) -> str:
    return f"lab{number:05d}"


def container_name(number: int) -> str:
    return f"{WORDS[number % len(WORDS)]}-{number:06d}"


def digest(number: int) -> str:
    return "sha256." + hashlib.sha256(number.to_bytes(8, "big")).hexdigest()


def batches(rows: Iterator[dict], size: int = BATCH) -> Iterator[list[dict]]:
    while batch := list(itertools.islice(rows, size)):
        yield batch


def seed(engine: Engine, images: int, member: str) -> Seeded:
    """Add ``images`` images (and their collections, containers, blobs and tags) to an empty registry, and
    make the user ``member`` an owner of the first few collections (some of them private)."""
    containers = max(1, images // PER_CONTAINER)
    collections = max(1, images // PER_COLLECTION)
    per_collection = max(1, containers // collections)
    with engine.begin() as connection:
        user_id = connection.scalar(select(User.id).where(User.name == member))
        tables = (
            (
                Collection,
                (
                    {
                        "id": c + 1,
                        "name": collection_name(c),
                        "description": f"images of {WORDS[c % len(WORDS)]} lab number {c}",
                        "private": c % 10 == 0,
                        "created_at": WHEN,
                        "updated_at": WHEN,
                    }
                    for c in range(collections)
                ),
            ),
            (
                CollectionMember,
                ({"collection_id": c + 1, "user_id": user_id, "role": "owner"} for c in range(min(collections, 20))),
            ),
            (
                Container,
                (
                    {
                        "id": k + 1,
                        "collection_id": min(k // per_collection, collections - 1) + 1,
                        "name": container_name(k),
                        "description": "",
                        "created_at": WHEN,
                        "updated_at": WHEN,
                    }
                    for k in range(containers)
                ),
            ),
            (Blob, ({"digest": digest(i), "size": SIZE, "created_at": WHEN} for i in range(images))),
            (
                Image,
                (
                    {
                        "id": i + 1,
                        "container_id": min(i // PER_CONTAINER, containers - 1) + 1,
                        "digest": digest(i),
                        "size": SIZE,
                        "arch": "amd64",
                        "description": "",
                        "uploaded": True,
                        "signed": i % 3 == 0,
                        "sif": {"labels": {"org.label-schema.name": container_name(i // PER_CONTAINER)}},
                        "downloads": 0,
                        "created_at": WHEN,
                        "uploaded_at": WHEN + dt.timedelta(seconds=i),
                    }
                    for i in range(images)
                ),
            ),
            (
                Tag,
                (
                    {
                        "container_id": min(i // PER_CONTAINER, containers - 1) + 1,
                        "image_id": i + 1,
                        "name": "latest" if i % PER_CONTAINER == PER_CONTAINER - 1 else f"v{i % PER_CONTAINER}",
                        "arch": "amd64",
                        "frozen": False,
                        "updated_at": WHEN,
                    }
                    for i in range(images)
                ),
            ),
        )
        for model, rows in tables:
            for batch in batches(rows):
                connection.execute(insert(model), batch)
        if engine.dialect.name == "postgresql":
            for model in (Collection, Container, Image, Tag, CollectionMember):
                table = model.__tablename__
                connection.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                )
    return Seeded(images, collection_name(1), container_name(per_collection + 1), WORDS[7])
