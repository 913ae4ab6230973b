"""each collection's numbers of containers and stars kept in collection_usage by triggers

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

A page of collections showed each collection's containers and stars counted on every request, by correlated
subqueries over their indexes: most of the cost of the statement that answers a listing. ``collection_usage``
(0005) already keeps images and size; it now keeps the two counts as well, changed by triggers in the same
transaction as the container or star, whatever code path (or cascade) makes the change. A count is left
alone when its collection is being deleted (the usage row goes with it, and PostgreSQL's foreign key would
refuse an update of a row whose collection is gone).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COUNTED = (("containers", "containers"), ("stars", "stars"))  # (table, column of collection_usage)
STILL_THERE = "EXISTS (SELECT 1 FROM collections WHERE id = {row}.collection_id)"


def add(column: str, row: str, conflict_prefix: str) -> str:
    return (
        f"INSERT INTO collection_usage (collection_id, {column}) VALUES ({row}.collection_id, 1) "
        f"ON CONFLICT (collection_id) DO UPDATE SET {column} = {conflict_prefix}{column} + 1"
    )


def remove(column: str, row: str) -> str:
    return (
        f"UPDATE collection_usage SET {column} = {column} - 1 "
        f"WHERE collection_id = {row}.collection_id AND {STILL_THERE.format(row=row)}"
    )


def sqlite_triggers() -> list[str]:
    statements = []
    for table, column in COUNTED:
        statements += [
            f"CREATE TRIGGER usage_{table}_insert AFTER INSERT ON {table} BEGIN {add(column, 'NEW', '')}; END",
            f"CREATE TRIGGER usage_{table}_delete AFTER DELETE ON {table} BEGIN {remove(column, 'OLD')}; END",
            f"CREATE TRIGGER usage_{table}_move AFTER UPDATE OF collection_id ON {table} "
            f"BEGIN {remove(column, 'OLD')}; {add(column, 'NEW', '')}; END",
        ]
    return statements


def postgresql_triggers() -> list[str]:
    statements = []
    for table, column in COUNTED:
        statements += [
            f"""
            CREATE FUNCTION usage_{table}_change() RETURNS trigger AS $$
            BEGIN
                IF TG_OP IN ('UPDATE', 'DELETE') THEN
                    {remove(column, 'OLD')};
                END IF;
                IF TG_OP IN ('UPDATE', 'INSERT') THEN
                    {add(column, 'NEW', 'collection_usage.')};
                END IF;
                RETURN NULL;
            END
            $$ LANGUAGE plpgsql
            """,
            f"CREATE TRIGGER usage_{table}_insert AFTER INSERT ON {table} FOR EACH ROW "
            f"EXECUTE FUNCTION usage_{table}_change()",
            f"CREATE TRIGGER usage_{table}_delete AFTER DELETE ON {table} FOR EACH ROW "
            f"EXECUTE FUNCTION usage_{table}_change()",
            f"CREATE TRIGGER usage_{table}_move AFTER UPDATE OF collection_id ON {table} FOR EACH ROW "
            f"WHEN (OLD.collection_id IS DISTINCT FROM NEW.collection_id) EXECUTE FUNCTION usage_{table}_change()",
        ]
    return statements


BACKFILL = (
    """
    INSERT INTO collection_usage (collection_id)
    SELECT id FROM collections WHERE id NOT IN (SELECT collection_id FROM collection_usage)
    """,
    """
    UPDATE collection_usage SET
        containers = (SELECT count(*) FROM containers WHERE containers.collection_id = collection_usage.collection_id),
        stars = (SELECT count(*) FROM stars WHERE stars.collection_id = collection_usage.collection_id)
    """,
)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for _, column in COUNTED:
        op.add_column("collection_usage", sa.Column(column, sa.Integer(), server_default="0", nullable=False))
    for statement in BACKFILL:
        op.execute(statement)
    for statement in postgresql_triggers() if postgresql else sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, column in COUNTED:
        for kind in ("insert", "delete", "move"):
            op.execute(f"DROP TRIGGER usage_{table}_{kind}" + (f" ON {table}" if postgresql else ""))
        if postgresql:
            op.execute(f"DROP FUNCTION usage_{table}_change()")
        with op.batch_alter_table("collection_usage") as batch:
            batch.drop_column(column)
