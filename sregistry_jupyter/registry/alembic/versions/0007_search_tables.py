"""name search from trigram full-text tables on SQLite; SIF labels in a table of their own, kept by triggers

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Searches match names containing the query (``LIKE '%x%'``). PostgreSQL answers that from the trigram GIN
indexes of 0005; SQLite's B-tree indexes cannot, so a search read every name. FTS5 with the ``trigram``
tokenizer (SQLite 3.34 or later) indexes every three-character substring: ``containers_fts`` and
``collections_fts`` index the names of their tables as external-content tables (the names are stored once,
in the tables themselves; the FTS rowid is the row's id). Triggers keep them in step with every insert,
rename and delete, cascades included, in the same transaction; the upgrade fills them from the rows there.

The shub label search matched every visible image's SIF labels, read out of ``images.sif`` (JSON) in
Python. ``image_labels`` holds one row per label (a non-string value as its JSON text), written by triggers
on ``images`` whatever code path sets ``sif`` and removed with the image by the foreign key's cascade, so the
search is a query with an index (trigram GIN on PostgreSQL) and a ``LIMIT``.

On PostgreSQL, deleting a collection with SQL (its containers going by the foreign key's cascade) failed:
0005's trigger on each container then updated the usage row of a collection already gone, which its
foreign key refuses. The trigger now leaves that row alone; it goes with its collection.
"""

import sqlite3

import sqlalchemy as sa
from alembic import op

from sregistry_jupyter.registry.db import SchemaError

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NAMED = ("containers", "collections")
TRIGRAM_SINCE = (3, 34, 0)
LABEL_INDEXES = ("key", "value")

# json_each gives true and false as 1 and 0: their JSON text is kept instead, as json_each_text does.
SQLITE_LABELS = (
    """
    CREATE TRIGGER image_labels_insert AFTER INSERT ON images WHEN json_type(NEW.sif, '$.labels') = 'object'
    BEGIN
        INSERT INTO image_labels (image_id, key, value)
        SELECT NEW.id, key, CASE WHEN type IN ('true', 'false') THEN type ELSE value END
        FROM json_each(NEW.sif, '$.labels') WHERE value IS NOT NULL;
    END
    """,
    """
    CREATE TRIGGER image_labels_update AFTER UPDATE OF sif ON images BEGIN
        DELETE FROM image_labels WHERE image_id = OLD.id;
        INSERT INTO image_labels (image_id, key, value)
        SELECT NEW.id, key, CASE WHEN type IN ('true', 'false') THEN type ELSE value END
        FROM json_each(NEW.sif, '$.labels') WHERE json_type(NEW.sif, '$.labels') = 'object' AND value IS NOT NULL;
    END
    """,
)
SQLITE_LABELS_BACKFILL = """
    INSERT INTO image_labels (image_id, key, value)
    SELECT images.id, labels.key, CASE WHEN labels.type IN ('true', 'false') THEN labels.type ELSE labels.value END
    FROM images, json_each(images.sif, '$.labels') AS labels
    WHERE json_type(images.sif, '$.labels') = 'object' AND labels.value IS NOT NULL
"""
POSTGRESQL_LABELS = (
    """
    CREATE FUNCTION image_labels_change() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            DELETE FROM image_labels WHERE image_id = OLD.id;
        END IF;
        IF json_typeof(NEW.sif -> 'labels') = 'object' THEN
            INSERT INTO image_labels (image_id, key, value)
            SELECT NEW.id, labels.key, labels.value FROM json_each_text(NEW.sif -> 'labels') AS labels
            WHERE labels.value IS NOT NULL;
        END IF;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    "CREATE TRIGGER image_labels_insert AFTER INSERT ON images FOR EACH ROW EXECUTE FUNCTION image_labels_change()",
    """
    CREATE TRIGGER image_labels_update AFTER UPDATE OF sif ON images FOR EACH ROW
    EXECUTE FUNCTION image_labels_change()
    """,
)
POSTGRESQL_LABELS_BACKFILL = """
    INSERT INTO image_labels (image_id, key, value)
    SELECT images.id, labels.key, labels.value FROM images, json_each_text(images.sif -> 'labels') AS labels
    WHERE json_typeof(images.sif -> 'labels') = 'object' AND labels.value IS NOT NULL
"""


USAGE_CONTAINER_DELETE = """
    CREATE OR REPLACE FUNCTION usage_container_delete() RETURNS trigger AS $$
    BEGIN
        UPDATE collection_usage
        SET images = images - (SELECT count(*) FROM images WHERE container_id = OLD.id AND uploaded),
            size = size - (SELECT coalesce(sum(size), 0) FROM images WHERE container_id = OLD.id AND uploaded)
        WHERE collection_id = OLD.collection_id {only_if};
        RETURN OLD;
    END
    $$ LANGUAGE plpgsql
"""
COLLECTION_THERE = "AND EXISTS (SELECT 1 FROM collections WHERE id = OLD.collection_id)"


def sqlite_names(table: str) -> list[str]:
    fts = f"{table}_fts"
    remove = f"INSERT INTO {fts} ({fts}, rowid, name) VALUES ('delete', OLD.id, OLD.name);"
    add = f"INSERT INTO {fts} (rowid, name) VALUES (NEW.id, NEW.name);"
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5(name, content='{table}', content_rowid='id', tokenize='trigram')",
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN {add} END",
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN {remove} END",
        f"CREATE TRIGGER {fts}_update AFTER UPDATE OF id, name ON {table} BEGIN {remove} {add} END",
        f"INSERT INTO {fts} ({fts}) VALUES ('rebuild')",
    ]


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if not postgresql and sqlite3.sqlite_version_info < TRIGRAM_SINCE:
        raise SchemaError(f"name search needs SQLite 3.34 or later (trigrams), not {sqlite3.sqlite_version}")
    op.create_table(
        "image_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_image_labels_image_id_images"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_labels")),
    )
    op.execute(POSTGRESQL_LABELS_BACKFILL if postgresql else SQLITE_LABELS_BACKFILL)
    op.create_index(op.f("ix_image_labels_image_id"), "image_labels", ["image_id"])
    for column in LABEL_INDEXES:
        kwargs = {"postgresql_using": "gin", "postgresql_ops": {column: "gin_trgm_ops"}} if postgresql else {}
        op.create_index(f"ix_image_labels_{column}_trgm", "image_labels", [column], **kwargs)
    for statement in POSTGRESQL_LABELS if postgresql else SQLITE_LABELS:
        op.execute(statement)
    if postgresql:
        op.execute(USAGE_CONTAINER_DELETE.format(only_if=COLLECTION_THERE))
    else:
        for table in NAMED:
            for statement in sqlite_names(table):
                op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for kind in ("insert", "update"):
        op.execute(f"DROP TRIGGER image_labels_{kind}" + (" ON images" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION image_labels_change()")
        op.execute(USAGE_CONTAINER_DELETE.format(only_if=""))
    else:
        for table in NAMED:
            for kind in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER {table}_fts_{kind}")
            op.execute(f"DROP TABLE {table}_fts")
    op.drop_table("image_labels")
