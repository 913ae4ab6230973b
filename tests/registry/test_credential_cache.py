"""The credential cache: verified tokens are remembered, and stop working as soon as the rules say.

Unit tests pin the cache's rule (one generation at a time, generations only grow, expiry and confirmation age
checked on use); the live tests show the triggers of migration 0006 and the three ways the generation is learnt:
this process's own commits (refused by the very next request), other writers (refused within one interval),
and every lookup. Browser sessions are not remembered: one ended elsewhere is refused at once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import create_engine, delete, select, update
from sqlalchemy.orm import Session
from test_scale_queries import statements
from test_sign_in import add_person, signed_in

from sregistry_jupyter.registry import db
from sregistry_jupyter.registry.auth.local import LocalAuthenticator
from sregistry_jupyter.registry.credential_cache import GENERATION, credential_cache
from sregistry_jupyter.registry.orm import ApiToken, BrowserSession, User, utcnow

API = "/api/v1"


@pytest.fixture
def registry_settings() -> dict:
    return {"authenticator": LocalAuthenticator()}


def test_nothing_is_served_before_a_generation_is_known():
    cache = credential_cache(max_age=60)
    cache.remember("k", "value", 0, None)
    assert cache.lookup("k") is None
    cache.observe(0, time.monotonic())
    assert cache.lookup("k") is None  # remembered before the generation was known: dropped
    cache.remember("k", "value", 0, None)
    assert cache.lookup("k") == "value"


def test_a_newer_generation_drops_everything_and_an_older_read_is_not_kept():
    cache = credential_cache(max_age=60)
    cache.observe(5, time.monotonic())
    cache.remember("old", "a", 5, None)
    cache.observe(6, time.monotonic())
    assert cache.lookup("old") is None
    cache.remember("stale", "b", 5, None)  # read from a snapshot before the change: never kept
    assert cache.lookup("stale") is None
    cache.observe(5, time.monotonic())  # a slow read of the older generation does not go back
    assert cache.generation == 6
    cache.remember("fresh", "c", 6, None)
    assert cache.lookup("fresh") == "c"


def test_entries_expire_and_an_unconfirmed_generation_serves_nothing():
    cache = credential_cache(max_age=0.2)
    cache.observe(1, time.monotonic())
    cache.remember("expired", "a", 1, utcnow() - dt.timedelta(seconds=1))
    cache.remember("live", "b", 1, utcnow() + dt.timedelta(hours=1))
    assert cache.lookup("expired") is None
    assert cache.lookup("live") == "b"
    time.sleep(0.3)
    assert cache.lookup("live") is None
    cache.observe(1, time.monotonic())
    assert cache.lookup("live") == "b"


def test_the_cache_keeps_at_most_its_size_dropping_the_least_recently_used():
    cache = credential_cache(max_age=60, size=3)
    cache.observe(0, time.monotonic())
    for key in "abc":
        cache.remember(key, key, 0, None)
    assert cache.lookup("a") == "a"
    cache.remember("d", "d", 0, None)
    assert len(cache) == 3
    assert cache.lookup("b") is None
    assert [cache.lookup(k) for k in "acd"] == ["a", "c", "d"]


def test_concurrent_use_keeps_the_cache_consistent():
    cache = credential_cache(max_age=60, size=50)
    cache.observe(0, time.monotonic())
    errors = []

    def work(offset: int) -> None:
        try:
            for i in range(2000):
                key = (offset + i) % 80
                cache.remember(key, key, cache.generation or 0, None)
                found = cache.lookup(key)
                assert found in (None, key)
                if i % 500 == 0:
                    cache.observe((cache.generation or 0) + 1, time.monotonic())
        except Exception as error:  # reported below, with the thread's failure
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n * 7,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 50


def generation(url: str) -> int:
    engine = db.make_engine(url)
    try:
        with Session(engine) as session:
            return session.scalar(select(GENERATION))
    finally:
        engine.dispose()


def outside_engine(url: str):
    """An engine of the same database that no registry watches: another process, as far as the cache knows."""
    return create_engine(db.normalise_url(url))


def test_triggers_bump_the_generation_for_changes_of_meaning_only(registry):
    registry.add_user("alice")
    registry.add_user("bob")
    engine = outside_engine(registry.db_url)
    changes = [
        update(ApiToken).values(last_used_at=utcnow()),
        update(User).where(User.name == "bob").values(email="bob@example.org"),
        update(User).where(User.name == "bob").values(session_epoch=User.session_epoch + 1),
    ]
    meanings = [
        update(ApiToken).where(ApiToken.user_id == select(User.id).where(User.name == "bob").scalar_subquery())
        .values(revoked_at=utcnow()),
        update(User).where(User.name == "bob").values(is_staff=True),
        update(User).where(User.name == "bob").values(disabled_at=utcnow()),
        update(ApiToken).where(ApiToken.scope == "admin").values(scope="read"),
        delete(User).where(User.name == "bob"),
    ]
    try:
        before = generation(registry.db_url)
        for statement in changes:
            with engine.begin() as connection:
                connection.execute(statement)
        assert generation(registry.db_url) == before
        for statement in meanings:
            with engine.begin() as connection:
                connection.execute(statement)
            after = generation(registry.db_url)
            assert after > before, statement  # by one per changed table: a cascade may bump it more than once
            before = after
    finally:
        engine.dispose()


def test_a_warm_token_needs_no_database_statement(registry):
    client = registry.client(registry.add_user("alice", scope="read"))
    assert client.get("/version").status_code == 200
    with statements(registry.context.engine) as seen:
        assert client.get("/version").status_code == 200
    assert not [sql for _, sql in seen if "api_tokens" in sql]


def test_a_token_revoked_here_is_refused_by_the_next_request(registry):
    alice = registry.client(registry.add_user("alice"))
    made = alice.post(f"{API}/user/tokens", json={"name": "laptop", "scope": "read"}).json()
    laptop = registry.client(made["token"])
    assert laptop.get(f"{API}/user").status_code == 200
    assert alice.delete(f"{API}/user/tokens/{made['id']}").status_code == 204
    assert laptop.get(f"{API}/user").status_code == 401


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda: update(ApiToken).values(revoked_at=utcnow()), id="revoked"),
        pytest.param(lambda: update(User).values(disabled_at=utcnow()), id="disabled"),
        pytest.param(lambda: update(ApiToken).values(expires_at=utcnow() - dt.timedelta(seconds=1)), id="expired"),
    ],
)
def test_a_change_made_elsewhere_takes_effect_within_one_interval(registry, change):
    client = registry.client(registry.add_user("alice"))
    assert client.get(f"{API}/user").status_code == 200
    engine = outside_engine(registry.db_url)
    try:
        with engine.begin() as connection:
            connection.execute(change())
    finally:
        engine.dispose()
    changed = time.monotonic()
    while client.get(f"{API}/user").status_code == 200:
        assert time.monotonic() - changed < 3 * registry.context.flush_interval, "still accepted"
        time.sleep(0.05)
    assert client.get(f"{API}/user").status_code == 401


def test_a_session_ended_elsewhere_is_refused_at_once(registry):
    add_person(registry, "alice")
    browser = signed_in(registry, "alice")
    assert browser.get(f"{API}/user").json()["name"] == "alice"
    engine = outside_engine(registry.db_url)
    try:
        with engine.begin() as connection:
            connection.execute(delete(BrowserSession))
    finally:
        engine.dispose()
    assert browser.get(f"{API}/user").status_code == 401
