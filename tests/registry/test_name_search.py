"""Name searches answer exactly what a plain ``LIKE`` over the same names answers, on SQLite (from its FTS5
trigram tables) and on PostgreSQL (from its trigram indexes): the same rows, in the same order, under the
same caps, for names holding the ``LIKE`` wildcards and the escape character, for queries shorter than a
trigram, and after renames, deletes and cascades that the triggers must follow. SIF labels are copied into
``image_labels`` by triggers on every insert, change and delete of an image, and the label search answers
what a plain case-insensitive ``LIKE`` over them answers, from SQLite's trigram table of labels too."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.orm import Session

from sregistry_jupyter.registry import db
from sregistry_jupyter.registry.access import ANONYMOUS
from sregistry_jupyter.registry.orm import Collection, Container, Image, ImageLabel, Tag
from sregistry_jupyter.registry.services import search

NAMES = [
    "hazel",
    "hazelnut-tool",
    "HAZEL-upper",
    "witch.hazel",
    "100%-pure",
    "100-pure",
    "snake_case",
    "snakeXcase",
    "back\\slash",
    "backXslash",
    'quote"d',
    "ünïcode-hazel",
    "ab",
]
QUERIES = ["hazel", "HAZEL", "zel", "%", "0%-", "_", "e_c", "\\", "k\\s", 'e"d', "ünï", "ab", "a", "zz-none", "ze"]


@pytest.fixture
def engine(db_url):
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


def fill(engine, names: list[str], collections: int = 2, labelled: bool = True) -> None:
    """``collections`` public collections, named after ``names`` too, each with a container per name and
    one uploaded, tagged image in each container (``labelled`` with its container's name in a value and a key)."""
    with engine.begin() as connection:
        for c in range(collections):
            collection_id = connection.execute(
                insert(Collection).values(name=f"{names[c % len(names)]}-lab{c}", description="", private=False)
            ).inserted_primary_key[0]
            for k, name in enumerate(names):
                container_id = connection.execute(
                    insert(Container).values(collection_id=collection_id, name=name, description="")
                ).inserted_primary_key[0]
                image_id = connection.execute(
                    insert(Image).values(
                        container_id=container_id, digest=f"sha256.{c:032d}{k:032d}", uploaded=True, size=k
                    )
                ).inserted_primary_key[0]
                if labelled:
                    labels = {"org.label-schema.name": name, f"{name}.key": "value"}
                    connection.execute(update(Image).where(Image.id == image_id).values(sif={"labels": labels}))
                tag = {"container_id": container_id, "image_id": image_id, "name": "v1", "arch": "amd64"}
                connection.execute(insert(Tag).values(**tag))


def plain(session, model, query: str) -> list[int]:
    """Ids whose name matches the plain ``LIKE``, which reads every name."""
    return list(session.scalars(select(model.id).where(search.like(model.name, query)).order_by(model.id)))


def indexed(session, model, query: str) -> list[int]:
    return list(session.scalars(select(model.id).where(search.name_contains(session, model, query)).order_by(model.id)))


def plain_labels(session, column, query: str) -> list[int]:
    """Ids of the labels whose ``column`` matches the plain case-insensitive ``LIKE``, which reads every label."""
    condition = column.ilike(search.containing(query), escape="\\")
    return list(session.scalars(select(ImageLabel.id).where(condition).order_by(ImageLabel.id)))


def indexed_labels(session, column, query: str) -> list[int]:
    condition = search.label_contains(session, column, query)
    return list(session.scalars(select(ImageLabel.id).where(condition).order_by(ImageLabel.id)))


def plain_label_search(session, key: str | None, value: str | None) -> list[tuple[str, str, str]]:
    """What ``label_search`` would list, from the plain ``LIKE``s alone."""
    conditions = [Collection.private.is_(False)]
    for column, query in ((ImageLabel.key, key), (ImageLabel.value, value)):
        if query is not None:
            conditions.append(column.ilike(search.containing(query), escape="\\"))
    rows = session.execute(
        select(ImageLabel.key, ImageLabel.value, Collection.name, Container.name, Tag.name)
        .join(Tag, Tag.image_id == ImageLabel.image_id)
        .join(Tag.container)
        .join(Container.collection)
        .where(*conditions)
        .order_by(ImageLabel.key, ImageLabel.value, Collection.name, Container.name, Tag.name, Tag.arch)
        .limit(search.TAGS_LIMIT)
    )
    return [(k, v, f"{collection}/{container}:{tag}") for k, v, collection, container, tag in rows]


def plain_library(session, query: str) -> tuple[list[int], list[int], list[int]]:
    """What ``library_search`` would list, computed from the plain ``LIKE`` alone."""
    collections = session.scalars(
        select(Collection.id)
        .where(search.like(Collection.name, query))
        .order_by(Collection.name)
        .limit(search.COLLECTIONS_LIMIT)
    ).all()
    containers = session.scalars(
        select(Container.id)
        .join(Container.collection)
        .where(search.like(Container.name, query))
        .order_by(Collection.name, Container.name)
        .limit(search.CONTAINERS_LIMIT)
    ).all()
    images = session.scalars(
        select(Image.id)
        .join(Image.container)
        .join(Container.collection)
        .where(Image.uploaded.is_(True), search.like(Container.name, query) | search.like(Collection.name, query))
        .order_by(Collection.name, Container.name, Image.id)
        .limit(search.IMAGES_LIMIT)
    ).all()
    return list(collections), list(containers), list(images)


def plain_shub(session, query: str) -> list[int]:
    """The images of what the shub search would list (one tag per container here), from the plain ``LIKE``."""
    return list(
        session.scalars(
            select(Tag.image_id)
            .join(Tag.container)
            .join(Container.collection)
            .where(search.like(Container.name, query))
            .order_by(Collection.name, Container.name, Tag.name, Tag.arch)
            .limit(search.TAGS_LIMIT)
        )
    )


def check_matches_like(engine) -> None:
    with Session(engine) as session:
        for query in QUERIES:
            for model in (Container, Collection):
                assert indexed(session, model, query) == plain(session, model, query), (model, query)
            found = search.library_search(session, ANONYMOUS, query, None, None)
            listed = ([c.id for c in found.collections], [c.id for c in found.containers], [i.id for i in found.images])
            assert listed == plain_library(session, query), query
            shub = search.shub_container_search(session, ANONYMOUS, None, query, None)
            assert [row.image_id for row in shub] == plain_shub(session, query), query
            for column in (ImageLabel.key, ImageLabel.value):
                assert indexed_labels(session, column, query) == plain_labels(session, column, query), (column, query)
            for key, value in ((None, query), (query, None), (query, query), ("name", query)):
                found = [tuple(match) for match in search.label_search(session, ANONYMOUS, key, value)]
                assert found == plain_label_search(session, key, value), (key, value)


def test_name_searches_answer_what_a_plain_like_answers(engine):
    fill(engine, NAMES, collections=3)
    with Session(engine) as session:
        assert indexed(session, Container, "%") == plain(session, Container, "%") != []
        assert len(indexed(session, Container, "hazel")) > len(indexed(session, Container, "_"))
        assert indexed_labels(session, ImageLabel.value, "hazel") == plain_labels(session, ImageLabel.value, "hazel")
        assert len(search.label_search(session, ANONYMOUS, "name", "HAZEL")) == 3 * 5
    check_matches_like(engine)


def test_the_search_follows_renames_deletes_and_cascades(engine):
    fill(engine, NAMES, collections=3)
    with engine.begin() as connection:
        connection.execute(update(Container).where(Container.name == "hazel").values(name="renamed-walnut"))
        connection.execute(update(Collection).where(Collection.name.like("hazel-lab%")).values(name="walnut-lab"))
        connection.execute(delete(Container).where(Container.name == "snake_case"))
        connection.execute(delete(Collection).where(Collection.name.like("%lab2")))  # its containers cascade
        relabelled = {"labels": {"org.label-schema.name": "walnut-relabelled"}}
        connection.execute(update(Image).where(Image.digest.like("sha256.%1")).values(sif=relabelled))
    with Session(engine) as session:
        assert indexed(session, Container, "walnut") == plain(session, Container, "walnut") != []
        assert [session.get(Collection, i).name for i in indexed(session, Collection, "walnut")] == ["walnut-lab"]
        assert len(session.scalars(select(Container.id)).all()) == 2 * (len(NAMES) - 1)
        walnut = indexed_labels(session, ImageLabel.value, "walnut")
        assert walnut == plain_labels(session, ImageLabel.value, "walnut") and len(walnut) == 4
    check_matches_like(engine)
    if engine.dialect.name == "sqlite":
        with engine.begin() as connection:
            for fts in search.SEARCH_TABLES.values():
                connection.execute(text(f"INSERT INTO {fts} ({fts}, rank) VALUES ('integrity-check', 1)"))


def test_sqlite_finds_names_from_its_trigram_tables_and_short_queries_by_the_like(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        db.upgrade(engine)
        with Session(engine) as session:
            contains = {
                Container: lambda query: search.name_contains(session, Container, query),
                Collection: lambda query: search.name_contains(session, Collection, query),
                ImageLabel: lambda query: search.label_contains(session, ImageLabel.value, query),
            }
            for query, uses_fts in (("hazel", True), ("ha", False)):
                for model, fts in search.SEARCH_TABLES.items():
                    statement = select(model.id).where(contains[model](query))
                    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
                    plan = " ".join(row[3] for row in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
                    assert (f"SCAN {fts} VIRTUAL TABLE" in plan) is uses_fts, (query, plan)
    finally:
        engine.dispose()


def test_capped_searches_keep_the_like_order(engine):
    many = [f"tool{n:03d}" for n in range(max(search.CONTAINERS_LIMIT, search.IMAGES_LIMIT) + 30)]
    fill(engine, many, collections=2)
    with Session(engine) as session:
        found = search.library_search(session, ANONYMOUS, "tool", None, None)
        assert len(found.containers) == search.CONTAINERS_LIMIT and len(found.images) == search.IMAGES_LIMIT
        assert ([c.id for c in found.containers], [i.id for i in found.images]) == plain_library(session, "tool")[1:]


def labels_of(engine) -> set[tuple[int, str, str]]:
    with engine.connect() as connection:
        return {tuple(row) for row in connection.execute(select(ImageLabel.image_id, ImageLabel.key, ImageLabel.value))}


def test_image_labels_follow_the_images_sif(engine):
    fill(engine, ["tool"], collections=1, labelled=False)
    with engine.begin() as connection:
        [image_id] = connection.scalars(select(Image.id)).all()
        assert labels_of(engine) == set()
        sif = {"labels": {"maintainer": "Ada", "version": 2, "latest": True}}
        connection.execute(update(Image).where(Image.id == image_id).values(sif=sif))
    expected = {(image_id, "maintainer", "Ada"), (image_id, "version", "2"), (image_id, "latest", "true")}
    assert labels_of(engine) == expected
    with engine.begin() as connection:
        connection.execute(update(Image).where(Image.id == image_id).values(sif={"labels": {"maintainer": "Grace"}}))
    assert labels_of(engine) == {(image_id, "maintainer", "Grace")}
    with engine.begin() as connection:
        connection.execute(update(Image).where(Image.id == image_id).values(sif={"labels": None}))
    assert labels_of(engine) == set()
    with engine.begin() as connection:
        container_id = connection.scalar(select(Container.id))
        second = connection.execute(
            insert(Image).values(
                container_id=container_id, digest="sha256." + "e" * 64, sif={"labels": {"a": "b"}}, uploaded=True
            )
        ).inserted_primary_key[0]
    assert labels_of(engine) == {(second, "a", "b")}
    with engine.begin() as connection:
        connection.execute(delete(Container))  # the images, and their labels, go with it
    assert labels_of(engine) == set()
