"""Listings, gets and searches cost a fixed number of statements whatever the registry holds, reads write
nothing, and the per-collection usage that listings show stays exact through pushes and deletes.

Statements are counted with a SQLAlchemy ``before_cursor_execute`` listener on the registry's engine, on
the threads that serve reads, around real HTTP requests; the same request is counted on a small registry
and on one grown several times larger (more collections, containers, images and tags per container).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select, text

from sregistry_jupyter.registry import db
from sregistry_jupyter.registry.orm import (
    Blob,
    Collection,
    CollectionMember,
    CollectionUsage,
    Container,
    Image,
    Star,
    Tag,
    User,
)
from sregistry_jupyter.registry.services import search, stats
from sregistry_jupyter.registry.services.limits import Limiter, Limits
from tests.conftest import pg_database
from tests.registry.test_transfer import push

WHEN = dt.datetime(2026, 1, 1)
WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest.fixture
def registry_settings() -> dict:
    """Limits counted (write-behind) and flushed only when a test asks, so that any write a read makes is
    seen as the read's own."""
    return {"flush_interval": 3600.0, "limiter": Limiter(Limits(rate_limit=1_000_000))}


@contextmanager
def statements(engine) -> Iterator[list[tuple[str, str]]]:
    """Every statement run on ``engine`` meanwhile, with the name of the thread that ran it."""
    seen: list[tuple[str, str]] = []

    def record(_conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        seen.append((threading.current_thread().name, statement))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def grow(registry, reader: str, collections: int, containers: int, images: int) -> None:
    """Add ``collections`` collections (every third private, ``reader`` owning the first two) holding
    ``containers`` containers of ``images`` uploaded, tagged images each, with bulk inserts."""
    with registry.session() as session:
        user_id = session.scalar(select(User.id).where(User.name == reader))
        start = session.scalar(select(func.count(Collection.id))) or 0
        for c in range(start, start + collections):
            collection = Collection(name=f"lab{c:04d}", description="", private=c % 3 == 2)
            session.add(collection)
            session.flush()
            if c < 2:
                session.add(CollectionMember(collection_id=collection.id, user_id=user_id, role="owner"))
            for k in range(containers):
                container = Container(collection_id=collection.id, name=f"tool{k:03d}")
                session.add(container)
                session.flush()
                for i in range(images):
                    digest = "sha256." + hashlib.sha256(f"{c}/{k}/{i}".encode()).hexdigest()
                    session.add(Blob(digest=digest, size=100 + i))
                    image = Image(
                        container_id=container.id,
                        digest=digest,
                        size=100 + i,
                        uploaded=True,
                        uploaded_at=WHEN + dt.timedelta(seconds=i),
                        sif={"labels": {"name": container.name}},
                    )
                    session.add(image)
                    session.flush()
                    session.add(Tag(container_id=container.id, image_id=image.id, name=f"v{i}", arch="amd64"))
                    session.add(Tag(container_id=container.id, image_id=image.id, name=f"v{i}", arch="arm64"))
        session.commit()


REQUESTS = {
    "collection list": "/api/v1/collections?per_page=100",
    "collection get": "/api/v1/collections/lab0001",
    "container get": "/api/v1/collections/lab0001/containers/tool001",
    "image get": "/api/v1/collections/lab0001/containers/tool001/images/v1",
    "library search": "/v1/search?value=tool",
    "library container": "/v1/containers/any/lab0001/tool001",
    "shub search": "/api/container/search/name/tool",
    "shub manifest": "/api/container/lab0001/tool001:v1",
    "shub collections": "/api/collections",
    "shub collection": "/api/collection/lab0001",
    "shub labels": "/api/labels/search/name/key/tool/value",
    "shub label keys": "/api/labels/search",
    "stats": "/api/v1/stats",
    "plots page": "/plots",
}


def count_requests(registry, token: str) -> dict[str, int]:
    """Statements each request ran on the read threads, besides the token check (which the credential cache
    answers once it is warm, so its count depends on timing; ``test_credential_cache`` covers it); every request
    must succeed."""
    client = registry.client(token)
    counts = {}
    for name, path in REQUESTS.items():
        with statements(registry.context.engine) as seen:
            response = client.get(path)
        assert response.status_code == 200, (name, response.text)
        counts[name] = sum(1 for thread, sql in seen if thread.startswith("db-read") and "FROM api_tokens" not in sql)
    return counts


def test_reads_run_a_fixed_number_of_statements_whatever_the_registry_holds(registry):
    token = registry.add_user("reader", scope="read")
    grow(registry, "reader", collections=4, containers=2, images=2)
    small = count_requests(registry, token)
    grow(registry, "reader", collections=96, containers=5, images=4)
    large = count_requests(registry, token)
    assert large == small
    assert max(large.values()) <= 12, large
    listed = registry.client(token).get(REQUESTS["collection list"]).json()
    assert listed["total"] == 100 - 33  # every third is private, and the reader owns two public ones
    figures = {item["name"]: (item["containers"], item["images"], item["size"]) for item in listed["items"]}
    assert figures["lab0003"] == (2, 4, 2 * (100 + 101)) and figures["lab0010"] == (5, 20, 5 * (100 + 101 + 102 + 103))


def test_listings_label_searches_and_stats_stop_at_their_caps(registry, monkeypatch):
    """Caps lowered below what the registry holds: each answer holds what the caps allow, in order, and
    its statements neither grow nor read more than that."""
    token = registry.add_user("reader", scope="read")
    grow(registry, "reader", collections=12, containers=4, images=3)
    for module, name, value in (
        (search, "COLLECTIONS_LIMIT", 5),
        (search, "LISTED_TAGS", 2),
        (search, "TAGS_LIMIT", 7),
        (stats, "COLLECTIONS_LIMIT", 3),
        (stats, "CONTAINERS_LIMIT", 6),
    ):
        monkeypatch.setattr(module, name, value)
    client = registry.client(token)
    listed = client.get("/api/collections").json()["results"]
    assert [c["name"] for c in listed] == ["lab0000", "lab0001", "lab0003", "lab0004", "lab0006"]
    assert {c["name"]: [ref["uri"] for ref in c["containers"]] for c in listed}["lab0003"] == [
        "lab0003/tool000:v0",
        "lab0003/tool000:v1",
    ]
    assert all(len(c["containers"]) == 2 for c in listed)
    detail = client.get("/api/collection/lab0001").json()["containers"]
    assert [ref["uri"] for ref in detail] == [
        "lab0001/tool000:v0",
        "lab0001/tool000:v1",
        "lab0001/tool000:v2",
        "lab0001/tool001:v0",
    ]  # seven rows read: four tags, three of them on two architectures
    labels = client.get("/api/labels/search/name/key").json()
    assert [(entry["value"], entry["containers"]) for entry in labels] == [
        ("tool000", ["lab0000/tool000:v0", "lab0000/tool000:v1", "lab0000/tool000:v2", "lab0001/tool000:v0"])
    ]
    figures = client.get("/api/v1/stats").json()
    assert [c["name"] for c in figures["collections"]] == ["lab0000", "lab0001", "lab0003"]
    assert [(c["collection"], c["name"]) for c in figures["containers"]] == [
        ("lab0000", f"tool{k:03d}") for k in range(4)
    ] + [("lab0001", "tool000"), ("lab0001", "tool001")]
    assert figures["totals"] == {"collections": 8, "containers": 32, "images": 96, "tags": 192, "size": 32 * 303}


def test_reads_write_nothing_to_the_database(registry):
    token = registry.add_user("reader", scope="read")
    grow(registry, "reader", collections=3, containers=2, images=2)
    assert push(registry.client(registry.add_user("alice")), b"bytes to pull", "real", "one").status_code == 201
    registry.flush()
    client = registry.client(token)
    with statements(registry.context.engine) as seen:
        for path in REQUESTS.values():
            assert client.get(path).status_code == 200
        assert client.get("/api/v1/collections/real/containers/one/images/latest/file").content == b"bytes to pull"
    writes = [statement for _, statement in seen if statement.lstrip().upper().startswith(WRITES)]
    assert writes == []
    with statements(registry.context.engine) as seen:
        registry.flush()
    flushed = [statement for _, statement in seen if statement.lstrip().upper().startswith(WRITES)]
    assert any("counters" in statement for statement in flushed)
    assert any("last_used_at" in statement for statement in flushed)


def test_a_pull_selects_its_own_tag_and_nothing_twice(registry):
    """A pull runs one statement for each row it needs (token, collection, role, container, the tag with its
    image): the container's other tags are not loaded, and what access was checked on is not selected again."""
    alice = registry.client(registry.add_user("alice"))
    for n in range(30):
        assert push(alice, f"image {n}".encode(), "real", "one", tags=(f"v{n}",)).status_code == 201
    path = "/api/v1/collections/real/containers/one/images/v7/file"
    assert alice.get(path).status_code == 200
    with statements(registry.context.engine) as seen:
        assert alice.get(path).content == b"image 7"
    reads = [statement for thread, statement in seen if thread.startswith("db-read")]
    assert len(reads) <= 5, reads
    tag_reads = [statement for statement in reads if "FROM tags" in statement]
    assert tag_reads and all("tags.name =" in statement for statement in tag_reads), tag_reads


def usage_is_exact(registry) -> dict[str, tuple[int, int]]:
    """The triggers' per-collection figures, checked against a count of the images themselves."""
    with registry.session() as session:
        kept = {
            name: (images, size)
            for name, images, size in session.execute(
                select(Collection.name, CollectionUsage.images, CollectionUsage.size).join(
                    CollectionUsage, CollectionUsage.collection_id == Collection.id
                )
            )
        }
        counted = {
            name: (images, int(size))
            for name, images, size in session.execute(
                select(Collection.name, func.count(Image.id), func.coalesce(func.sum(Image.size), 0))
                .join(Container, Container.collection_id == Collection.id)
                .join(Image, Image.container_id == Container.id)
                .where(Image.uploaded.is_(True))
                .group_by(Collection.name)
            )
        }
    assert {name: figures for name, figures in kept.items() if figures != (0, 0)} == counted
    return counted


def counts_are_exact(registry) -> dict[str, tuple[int, int]]:
    """The triggers' containers and stars of each collection, checked against counting them."""
    with registry.session() as session:
        kept = {
            name: (n, s)
            for name, n, s in session.execute(
                select(Collection.name, CollectionUsage.containers, CollectionUsage.stars).join(
                    CollectionUsage, CollectionUsage.collection_id == Collection.id
                )
            )
        }
        containers = select(func.count(Container.id)).where(Container.collection_id == Collection.id)
        stars = select(func.count(Star.id)).where(Star.collection_id == Collection.id)
        counted = {
            name: (n, s)
            for name, n, s in session.execute(
                select(Collection.name, containers.scalar_subquery(), stars.scalar_subquery())
            )
        }
    assert set(kept) <= set(counted)  # a collection that never had a container or star may have no row
    assert {name: kept.get(name, (0, 0)) for name in counted} == counted
    return counted


def test_collection_counts_follow_containers_and_stars(registry):
    alice = registry.client(registry.add_user("alice"))
    bob = registry.client(registry.add_user("bob"))
    assert alice.post("/api/v1/collections", json={"name": "empty"}).status_code == 201
    assert push(alice, b"a" * 10, "lab", "one").status_code == 201
    assert push(alice, b"b" * 10, "lab", "two").status_code == 201
    assert push(alice, b"c" * 10, "other", "one").status_code == 201
    for client in (alice, bob):
        assert client.put("/api/v1/collections/lab/star").status_code == 200
    assert bob.put("/api/v1/collections/lab/star").status_code == 200  # starring twice changes nothing
    assert counts_are_exact(registry) == {"empty": (0, 0), "lab": (2, 2), "other": (1, 0)}
    listed = {item["name"]: item for item in alice.get("/api/v1/collections").json()["items"]}
    assert {name: (item["containers"], item["stars"]) for name, item in listed.items()} == {
        "empty": (0, 0),
        "lab": (2, 2),
        "other": (1, 0),
    }
    stars_first = alice.get("/api/v1/collections", params={"sort": "-stars"}).json()["items"]
    assert stars_first[0]["name"] == "lab"

    assert bob.delete("/api/v1/collections/lab/star").status_code == 200
    assert alice.delete("/api/v1/collections/lab/containers/two").status_code == 204
    assert counts_are_exact(registry) == {"empty": (0, 0), "lab": (1, 1), "other": (1, 0)}
    with registry.session() as session:  # underneath the ORM: an operator's SQL, the foreign keys' cascades
        session.execute(
            Container.__table__.delete().where(
                Container.name == "one",
                Container.collection_id.in_(select(Collection.id).where(Collection.name == "other")),
            )
        )
        session.execute(Collection.__table__.delete().where(Collection.name == "lab"))
        session.commit()
    assert counts_are_exact(registry) == {"empty": (0, 0), "other": (0, 0)}


def test_collection_usage_follows_pushes_retags_and_deletes(registry):
    client = registry.client(registry.add_user("alice"))
    first, second, third = b"a" * 1000, b"b" * 2000, b"c" * 3000
    assert push(client, first, "lab", "one").status_code == 201
    assert push(client, second, "lab", "two", tags=("v1", "latest")).status_code == 201
    assert push(client, first, "lab", "two", tags=("old",)).status_code == 201  # the same bytes again
    assert push(client, third, "other", "one").status_code == 201
    assert usage_is_exact(registry) == {"lab": (3, 4000), "other": (1, 3000)}
    listed = {item["name"]: item for item in client.get("/api/v1/collections").json()["items"]}
    assert (listed["lab"]["images"], listed["lab"]["size"]) == (3, 4000)

    assert client.delete("/api/v1/collections/lab/containers/two/tags/latest").status_code == 204
    assert usage_is_exact(registry) == {"lab": (3, 4000), "other": (1, 3000)}
    assert client.delete("/api/v1/collections/lab/containers/two/images/v1").status_code == 204
    assert usage_is_exact(registry) == {"lab": (2, 2000), "other": (1, 3000)}
    assert client.delete("/api/v1/collections/lab/containers/two").status_code == 204
    assert usage_is_exact(registry) == {"lab": (1, 1000), "other": (1, 3000)}
    assert client.delete("/api/v1/collections/other").status_code == 204
    assert usage_is_exact(registry) == {"lab": (1, 1000)}
    listed = {item["name"]: item for item in client.get("/api/v1/collections").json()["items"]}
    assert set(listed) == {"lab"} and (listed["lab"]["images"], listed["lab"]["size"]) == (1, 1000)


def test_a_container_deleted_by_the_database_cascade_takes_its_images_off(registry):
    """Deleting rows underneath the ORM (an operator's SQL, a foreign-key cascade) keeps the figures."""
    client = registry.client(registry.add_user("alice"))
    assert push(client, b"x" * 10, "lab", "one").status_code == 201
    assert push(client, b"y" * 20, "lab", "two").status_code == 201
    with registry.session() as session:
        session.execute(Container.__table__.delete().where(Container.name == "two"))
        session.commit()
    assert usage_is_exact(registry) == {"lab": (1, 10)}


def test_postgresql_answers_name_searches_from_the_trigram_index():
    """``LIKE '%x%'`` on names can use the trigram indexes (the planner told to avoid table scans, as it
    does by itself once the tables are large)."""
    for url in pg_database():
        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
            with engine.connect() as connection:
                connection.execute(text("SET enable_seqscan = off"))
                for table in ("containers", "collections"):
                    plan = connection.execute(text(f"EXPLAIN SELECT id FROM {table} WHERE name LIKE '%avocado%'"))
                    assert f"ix_{table}_name_trgm" in " ".join(row[0] for row in plan)
        finally:
            engine.dispose()
