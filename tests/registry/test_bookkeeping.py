"""The write-behind bookkeeping: counts stay exact while a flush is on its way, a failed flush loses
nothing, and processes sharing a database see each other's counts from one flush to the next."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from sregistry_jupyter.registry import db
from sregistry_jupyter.registry.bookkeeping import Bookkeeping
from sregistry_jupyter.registry.database import Database
from sregistry_jupyter.registry.orm import Counter

WINDOW = 4_000_000_000  # far in the future, so nothing is pruned


class GatedDatabase(Database):
    """A real database whose writes wait for the test to open a gate (a slow or locked database)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Event()
        self.failing = False

    async def write(self, work, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        await self.gate.wait()
        if self.failing:
            raise OSError("no space left on device")
        return await super().write(work, *args, **kwargs)


def database(db_url: str) -> GatedDatabase:
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    return GatedDatabase(db.make_session_factory(engine))


def stored(database: Database, key: str) -> int | None:
    with database.session_factory() as session:
        return session.scalar(select(Counter.count).where(Counter.key == key, Counter.window == WINDOW))


def test_counts_stay_exact_while_a_flush_is_on_its_way(db_url):
    async def scenario() -> None:
        gated = database(db_url)
        books = Bookkeeping(gated, clock=lambda: 0)
        assert [books.count("rate:token:1", WINDOW) for _ in range(3)] == [1, 2, 3]
        flushing = asyncio.ensure_future(books.flush())
        await asyncio.sleep(0.05)
        assert books.count("rate:token:1", WINDOW) == 4
        gated.gate.set()
        await flushing
        assert books.count("rate:token:1", WINDOW) == 5
        await books.flush()
        assert stored(gated, "rate:token:1") == 5
        gated.close()

    asyncio.run(scenario())


def test_a_failed_flush_keeps_everything_for_the_next_one(db_url):
    async def scenario() -> None:
        gated = database(db_url)
        gated.gate.set()
        gated.failing = True
        books = Bookkeeping(gated, clock=lambda: 0)
        books.count("rate:addr:1.2.3.4", WINDOW)
        await books.flush()
        assert books.count("rate:addr:1.2.3.4", WINDOW) == 2
        gated.failing = False
        await books.flush()
        assert stored(gated, "rate:addr:1.2.3.4") == 2
        gated.close()

    asyncio.run(scenario())


def test_processes_see_each_others_counts_from_flush_to_flush(db_url):
    async def scenario() -> None:
        first, second = database(db_url), database(db_url)
        first.gate.set()
        second.gate.set()
        here, there = Bookkeeping(first, clock=lambda: 0), Bookkeeping(second, clock=lambda: 0)
        here.count("rate:user:7", WINDOW)
        there.count("rate:user:7", WINDOW)
        there.count("rate:user:7", WINDOW)
        await here.flush()
        await there.flush()
        await here.flush()  # nothing of its own to add: it still learns the other process's counts
        assert here.count("rate:user:7", WINDOW) == 4
        assert there.count("rate:user:7", WINDOW) == 4
        first.close()
        second.close()

    asyncio.run(scenario())
