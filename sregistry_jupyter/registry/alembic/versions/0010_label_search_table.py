"""SIF label search from a trigram full-text table on SQLite

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

The shub label search matches labels whose key and value contain the query (``LIKE '%x%'``). PostgreSQL
answers that from the trigram GIN indexes of 0007; on SQLite the B-tree indexes of ``image_labels`` cannot,
so a search read every label. ``image_labels_fts`` indexes every three-character substring of each label's
key and value, as 0007's ``containers_fts`` does for names: an external-content FTS5 table (the text is
stored once, in ``image_labels``; the FTS rowid is the label's id), kept in step by triggers on every insert,
update and delete of a label (the triggers on ``images`` that write labels, and the cascade that removes
them with their image, included), in the same transaction; the upgrade fills it from the labels there.
PostgreSQL needs nothing new.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FTS = "image_labels_fts"
REMOVE = f"INSERT INTO {FTS} ({FTS}, rowid, key, value) VALUES ('delete', OLD.id, OLD.key, OLD.value);"
ADD = f"INSERT INTO {FTS} (rowid, key, value) VALUES (NEW.id, NEW.key, NEW.value);"
SQLITE = (
    f"CREATE VIRTUAL TABLE {FTS} USING fts5(key, value, content='image_labels', content_rowid='id', "
    "tokenize='trigram')",
    f"CREATE TRIGGER {FTS}_insert AFTER INSERT ON image_labels BEGIN {ADD} END",
    f"CREATE TRIGGER {FTS}_delete AFTER DELETE ON image_labels BEGIN {REMOVE} END",
    f"CREATE TRIGGER {FTS}_update AFTER UPDATE ON image_labels BEGIN {REMOVE} {ADD} END",
    f"INSERT INTO {FTS} ({FTS}) VALUES ('rebuild')",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    for statement in SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    for kind in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER {FTS}_{kind}")
    op.execute(f"DROP TABLE {FTS}")
