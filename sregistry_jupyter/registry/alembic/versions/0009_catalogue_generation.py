"""a generation number for the catalogue, bumped by triggers whenever what it answers can change

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Registry processes remember the answers of the catalogue's hot reads (lists of collections, a collection, a
container, its tags and images). What they remember stays right because of the ``catalogue`` generation
(``generations``, 0006), bumped in the transaction of every insert, update or delete in the tables those
answers are built from.

On PostgreSQL the bump is a deferred constraint trigger, run once per transaction at its commit: every other
lock the transaction needs is held by then, so concurrent writers wait on the generation's row only in the
instant before they commit and can never deadlock on it (a transaction that took the row early and then
waited for another's row could). A transaction-local setting marks the bump done, so a statement that changes
many rows costs one update. SQLite has one writer at a time and no deferred triggers: it bumps per row.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

CATALOGUE = "catalogue"
WATCHED = (
    "users",
    "collections",
    "collection_usage",
    "collection_members",
    "containers",
    "images",
    "image_labels",
    "tags",
    "stars",
    "teams",
    "team_members",
)
BUMP = f"UPDATE generations SET value = value + 1 WHERE name = '{CATALOGUE}'"
BUMPED = "sregistry.catalogue_bumped"


def sqlite_triggers() -> list[str]:
    return [
        f"CREATE TRIGGER catalogue_{table}_{kind.lower()} AFTER {kind} ON {table} BEGIN {BUMP}; END"
        for table in WATCHED
        for kind in ("INSERT", "UPDATE", "DELETE")
    ]


def postgresql_triggers() -> list[str]:
    statements = [
        f"""
        CREATE FUNCTION bump_catalogue_generation() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF current_setting('{BUMPED}', true) IS DISTINCT FROM 'yes' THEN
                PERFORM set_config('{BUMPED}', 'yes', true);
                {BUMP};
            END IF;
            RETURN NULL;
        END
        $$
        """
    ]
    for table in WATCHED:
        statements.append(
            f"CREATE CONSTRAINT TRIGGER catalogue_{table} AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_catalogue_generation()"
        )
    return statements


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.execute(f"INSERT INTO generations (name, value) VALUES ('{CATALOGUE}', 0)")
    for statement in postgresql_triggers() if postgresql else sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER catalogue_{table} ON {table}")
        op.execute("DROP FUNCTION bump_catalogue_generation()")
    else:
        for table in WATCHED:
            for kind in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER catalogue_{table}_{kind}")
    op.execute(f"DELETE FROM generations WHERE name = '{CATALOGUE}'")
