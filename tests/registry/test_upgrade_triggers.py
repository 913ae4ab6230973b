"""Schema upgrades keep the triggers that keep derived data (usage figures, generations, search tables, image
labels): on SQLite, rebuilding a table to alter it (``op.batch_alter_table``) drops its triggers without a word,
and on PostgreSQL so does dropping a function with CASCADE, so a later migration could lose one silently.

A new database is upgraded one revision at a time on both engines; after each step the test reads which
triggers exist. A trigger may leave only by a ``DROP TRIGGER`` the step ran, or with its table; any other
loss fails, naming the migration. The revisions come from the migrations themselves, so a new migration is
covered without changing this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, inspect, text

from sregistry_jupyter.registry import db

pytestmark = pytest.mark.slow

Trigger = tuple[str, str]  # (table, trigger): PostgreSQL names triggers per table
DROP_TRIGGER = re.compile(r"\bDROP\s+TRIGGER\s+(?:IF\s+EXISTS\s+)?\"?(\w+)", re.IGNORECASE)


def triggers(engine: Engine) -> set[Trigger]:
    """The triggers the schema defines; on PostgreSQL without the internal ones behind foreign keys."""
    if engine.dialect.name == "sqlite":
        query = "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'"
    else:
        query = (
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
        )
    with engine.connect() as connection:
        return {(table, name) for table, name in connection.execute(text(query))}


@contextmanager
def dropped_triggers() -> Iterator[set[str]]:
    """The names of the triggers every statement run meanwhile, by any engine, dropped by name.

    ``db.upgrade`` migrates SQLite through an engine of its own, so the listener is on the class.
    """
    names: set[str] = set()

    def record(_connection, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        names.update(DROP_TRIGGER.findall(statement))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield names
    finally:
        event.remove(Engine, "before_cursor_execute", record)


@dataclass(frozen=True)
class Step:
    """One migration's effect on the triggers."""

    revision: str
    path: Path
    before: frozenset[Trigger]
    after: frozenset[Trigger]
    dropped: frozenset[str]
    tables: frozenset[str]

    @property
    def file(self) -> str:
        return self.path.name

    @property
    def added(self) -> set[Trigger]:
        return set(self.after - self.before)

    @property
    def removed(self) -> set[Trigger]:
        return set(self.before - self.after)

    @property
    def lost(self) -> set[Trigger]:
        """What the step removed without dropping it by name or dropping its table."""
        return {(table, name) for table, name in self.removed if name not in self.dropped and table in self.tables}


def upgrade_one_revision_at_a_time(db_url: str) -> list[Step]:
    scripts = db.script_directory()
    engine = db.make_engine(db_url)
    steps = []
    try:
        before = frozenset(triggers(engine))
        for revision in db.revisions():
            with dropped_triggers() as dropped:
                db.upgrade(engine, revision, backup=False)
            after = frozenset(triggers(engine))
            tables = frozenset(inspect(engine).get_table_names())
            path = Path(scripts.get_revision(revision).path)
            steps.append(Step(revision, path, before, after, frozenset(dropped), tables))
            before = after
    finally:
        engine.dispose()
    return steps


def describe(triggers: set[Trigger]) -> str:
    return ", ".join(f"{name} (on {table})" for table, name in sorted(triggers))


def test_every_trigger_survives_the_later_migrations_unless_one_drops_it(db_url) -> None:
    steps = upgrade_one_revision_at_a_time(db_url)
    assert [step.revision for step in steps] == db.revisions()
    # Not vacuous: the migrations that brought triggers are seen to add some (a query that found none would not).
    assert {step.revision for step in steps if step.added} >= {"0005", "0006", "0007", "0008", "0009"}

    # What head should have: each step's additions, less what a step removed on purpose; a trigger lost
    # silently is missing from the head, and the message says which migration lost it.
    expected: set[Trigger] = set()
    for step in steps:
        expected = (expected | step.added) - (step.removed - step.lost)
    silent = "; ".join(f"{step.file} lost {describe(step.lost)}" for step in steps if step.lost)
    assert steps[-1].after == expected, f"a migration removed triggers it does not drop by name: {silent}"
