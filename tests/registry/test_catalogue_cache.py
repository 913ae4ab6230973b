"""The catalogue cache: a repeated read is answered from memory, and never hides a change it should show.

A warm list or get runs no statement; every kind of change made through this process (a push, a retag, a
privacy change, a member, a star, a deletion, counted downloads) shows in the very next answer here; a change
made by another writer shows within one interval, and at once to a caller that sends ``Cache-Control:
no-cache``; one caller's answer is never given to another. Migration 0009's triggers bump the generation once
per PostgreSQL transaction, however many rows it changes, at its commit, so that writers never deadlock on it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import create_engine, select, text, update
from test_scale_queries import statements
from test_transfer import push

from sregistry_jupyter.registry import db
from sregistry_jupyter.registry.catalogue_cache import CATALOGUE, ReadsInFlight, catalogue_cache
from sregistry_jupyter.registry.generation_cache import generation_of
from sregistry_jupyter.registry.orm import ApiToken, Collection, Image, utcnow
from tests.conftest import pg_database

API = "/api/v1"
LIST = f"{API}/collections"
CONTAINER = f"{API}/collections/lab/containers/tool"
NEW_COLLECTION = text(
    "INSERT INTO collections (name, description, private, created_at, updated_at) "
    "VALUES (:name, '', false, now(), now())"
)


def outside_engine(url: str):
    """An engine of the same database that no registry watches: another process, as far as the cache knows."""
    return create_engine(db.normalise_url(url))


def generation(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(generation_of(CATALOGUE)))


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def test_answers_are_kept_by_weight_and_one_too_large_is_not_kept():
    cache = catalogue_cache(max_age=60, capacity=4 << 20)
    cache.observe(0, time.monotonic())
    for n in range(4):
        cache.remember(n, b"x" * (1 << 20), 0)
    cache.remember("large", b"x" * ((1 << 20) + 1), 0)  # above the largest answer kept: read each time
    assert cache.lookup("large") is None
    assert cache.weight == 4 << 20
    assert cache.lookup(0) is not None  # used: the least recently used is now 1
    cache.remember("small", b"{}", 0)
    assert cache.lookup(1) is None
    assert [cache.lookup(key) is not None for key in (0, 2, 3, "small")] == [True] * 4
    assert cache.weight == (3 << 20) + 2


def test_a_warm_list_or_get_runs_no_statement(registry):
    alice = registry.client(registry.add_user("alice"))
    assert push(alice, b"image bytes").status_code == 201
    repeated = (
        *(LIST, f"{LIST}?q=la&sort=-updated", f"{API}/collections/lab", CONTAINER, f"{CONTAINER}/tags"),
        f"{CONTAINER}/images/latest",
        *("/api/collections", "/api/collection/lab", "/api/container/search/name/tool", "/api/labels/search"),
        "/v1/search?value=tool",
    )
    for path in repeated:
        first = alice.get(path)
        assert first.status_code == 200, path
        with statements(registry.context.engine) as seen:
            again = alice.get(path)
        assert again.content == first.content
        assert again.headers["Content-Type"] == "application/json"
        assert [sql for _, sql in seen if "api_tokens" not in sql] == [], path


def test_every_change_made_here_shows_in_the_next_answer(registry):
    alice = registry.client(registry.add_user("alice"))
    registry.add_user("bob")
    bob = registry.client(registry.add_user("bob"))
    anonymous = registry.client()
    assert push(alice, b"first image").status_code == 201
    assert names(anonymous.get(LIST)) == ["lab"]
    before = alice.get(CONTAINER).json()

    assert push(alice, b"second image", tags=("latest",)).status_code == 201
    after = alice.get(CONTAINER).json()
    assert after != before and len(after["images"]) == len(before["images"]) + 1

    assert push(alice, b"other", container="other").status_code == 201
    assert [c["name"] for c in alice.get(f"{API}/collections/lab").json()["containers_list"]] == ["other", "tool"]

    assert alice.patch(f"{API}/collections/lab", json={"private": True}).status_code == 200
    assert names(anonymous.get(LIST)) == []
    assert names(bob.get(LIST)) == []
    staff = registry.client(registry.add_user("steve", staff=True))
    assert staff.post(f"{API}/teams", json={"name": "group"}).status_code == 201
    for person in ("alice", "bob"):
        assert staff.post(f"{API}/teams/group/members", json={"user": person}).status_code == 201
    assert names(bob.get(LIST)) == []  # a team-mate, not yet a member
    assert alice.post(f"{API}/collections/lab/members", json={"user": "bob", "role": "contributor"}).status_code == 201
    assert names(bob.get(LIST)) == ["lab"]

    assert bob.get(LIST).json()["items"][0]["stars"] == 0
    assert bob.put(f"{API}/collections/lab/star").status_code == 200
    assert bob.get(LIST).json()["items"][0]["stars"] == 1

    pulled = alice.get(f"{CONTAINER}/images/latest/file")
    assert pulled.content == b"second image"
    registry.flush()  # the download is counted by the write-behind bookkeeping
    latest = next(i for i in alice.get(CONTAINER).json()["images"] if "latest" in i["tags"])
    assert latest["downloads"] == 1

    assert alice.delete(f"{API}/collections/lab/containers/other").status_code == 204
    assert [c["name"] for c in alice.get(f"{API}/collections/lab").json()["containers_list"]] == ["tool"]
    assert alice.delete(f"{API}/collections/lab").status_code == 204
    assert alice.get(CONTAINER).status_code == 404
    assert names(bob.get(LIST)) == []


def test_requests_that_miss_together_make_one_read(registry):
    alice = registry.client(registry.add_user("alice"))
    assert push(alice, b"image bytes").status_code == 201
    assert alice.get("/version").status_code == 200  # the token is verified and the generation known
    callers = [registry.client(alice.headers["Authorization"].split()[1]) for _ in range(10)]
    start = threading.Barrier(len(callers))

    def ask(client) -> bytes:
        start.wait()
        response = client.get(CONTAINER)
        assert response.status_code == 200
        return response.content

    with statements(registry.context.engine) as seen, ThreadPoolExecutor(len(callers)) as pool:
        answers = list(pool.map(ask, callers))
    assert len(set(answers)) == 1
    reads = [sql for _, sql in seen if "WHERE generations.name" in " ".join(sql.split()) and "api_tokens" not in sql]
    assert len(reads) == 1, reads


def test_a_read_is_joined_only_at_the_generation_it_began():
    async def scenario() -> None:
        reads = ReadsInFlight()
        first = reads.begin("key", 5)
        assert first is not None and reads.joinable("key", 5) is first
        assert reads.joinable("key", 6) is None  # a change seen since: read afresh
        assert reads.joinable("other", 5) is None and reads.begin("key", 5) is None
        reads.end("key", first, b"answer")
        assert await first == b"answer" and reads.joinable("key", 5) is None
        failed = reads.begin("key", 6)
        reads.end("key", failed, None)
        assert failed.cancelled()  # its joiners read for themselves
        assert reads.begin("key", None) is None  # no generation known yet: nothing shared

    asyncio.run(scenario())


def test_one_callers_answer_is_never_given_to_another(registry):
    alice = registry.client(registry.add_user("alice"))
    assert push(alice, b"secret image", collection="mine").status_code == 201
    assert alice.patch(f"{API}/collections/mine", json={"private": True}).status_code == 200
    assert names(alice.get(LIST)) == ["mine"]
    assert alice.get(f"{API}/collections/mine/containers/tool").status_code == 200
    bob = registry.client(registry.add_user("bob"))
    read_only = registry.client(registry.add_user("alice", scope="read"))
    assert names(bob.get(LIST)) == []
    assert names(registry.client().get(LIST)) == []
    assert bob.get(f"{API}/collections/mine/containers/tool").status_code == 404
    assert names(read_only.get(LIST)) == ["mine"]  # the same person with another scope: read afresh, same rules


def test_a_change_made_elsewhere_shows_within_one_interval_and_at_once_when_asked(registry):
    alice = registry.client(registry.add_user("alice"))
    assert push(alice, b"image bytes").status_code == 201
    assert alice.get(LIST).json()["items"][0]["description"] == ""
    engine = outside_engine(registry.db_url)
    try:
        with engine.begin() as connection:
            connection.execute(update(Collection).values(description="changed elsewhere"))
    finally:
        engine.dispose()
    changed = time.monotonic()
    fresh = alice.get(LIST, headers={"Cache-Control": "no-cache"})
    assert fresh.json()["items"][0]["description"] == "changed elsewhere"
    while alice.get(LIST).json()["items"][0]["description"] != "changed elsewhere":
        assert time.monotonic() - changed < 3 * registry.context.flush_interval, "still the old answer"
        time.sleep(0.05)


def test_the_generation_moves_for_catalogue_changes_only(registry):
    alice = registry.client(registry.add_user("alice"))
    for n in range(3):
        assert push(alice, f"image {n}".encode(), tags=(f"v{n}",)).status_code == 201
    engine = outside_engine(registry.db_url)
    try:
        before = generation(engine)
        with engine.begin() as connection:
            connection.execute(update(ApiToken).values(last_used_at=utcnow()))
        assert generation(engine) == before
        with engine.begin() as connection:
            connection.execute(update(Image).values(downloads=Image.downloads + 1))  # three rows
        bumped = generation(engine) - before
        if engine.dialect.name == "postgresql":
            assert bumped == 1  # once per transaction, at its commit
        else:
            assert bumped >= 1
    finally:
        engine.dispose()


def test_postgresql_writers_never_deadlock_on_the_generation():
    """The first transaction holds a row the catalogue does not watch (a counter); the second changes a
    collection, then waits for that counter; the first then changes another collection. A bump taken at each
    change would have the second hold the generation's row while waiting for the first, and the first wait
    for it: a deadlock. Taken at commit, the first commits and the second follows."""
    for url in pg_database():
        engine = create_engine(db.normalise_url(url))
        try:
            db.upgrade(engine)
            with engine.begin() as connection:
                for name in "cd":
                    connection.execute(NEW_COLLECTION, {"name": name})
                connection.execute(text("INSERT INTO counters (key, \"window\", count) VALUES ('k', 0, 0)"))
            assert crossing_writers(engine) == []
            with engine.connect() as connection:
                descriptions = dict(connection.execute(text("SELECT name, description FROM collections")).all())
                assert connection.scalar(text("SELECT count FROM counters")) == 2
            assert descriptions == {"c": "first", "d": "second"}
        finally:
            engine.dispose()


COUNT = text("UPDATE counters SET count = count + 1 WHERE key = 'k'")


def crossing_writers(engine) -> list[BaseException]:
    """Run the two transactions of the test above; the errors either met."""
    second_waits = threading.Event()
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with engine.begin() as connection:
                connection.execute(text("UPDATE collections SET description = 'second' WHERE name = 'd'"))
                second_waits.set()
                connection.execute(COUNT)
        except BaseException as error:
            errors.append(error)

    try:
        with engine.begin() as connection:
            connection.execute(COUNT)
            thread = threading.Thread(target=second)
            thread.start()
            assert second_waits.wait(10)
            time.sleep(0.3)  # the second now waits for the counter this transaction holds
            connection.execute(text("UPDATE collections SET description = 'first' WHERE name = 'c'"))
    except BaseException as error:
        errors.append(error)
    thread.join(30)
    return errors
