"""indexes for search and listings at a million images; per-collection usage kept by triggers

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Searches match names containing the query (``LIKE '%x%'``), which no B-tree can answer: on PostgreSQL the
name indexes are trigram GIN indexes (``pg_trgm``), which can; on SQLite they are ordinary indexes, which
make the scan of names a scan of the index. Listings show each collection's number of images and their
size, which were counted from every image of every listed collection on every request: the
``collection_usage`` table keeps those two figures, maintained by triggers in the same transaction as the
change to an image, whatever code path (or cascade) makes it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NAME_INDEXES = (("ix_collections_name_trgm", "collections"), ("ix_containers_name_trgm", "containers"))

SQLITE_TRIGGERS = (
    # An image counts while it is uploaded; its collection is its container's.
    """
    CREATE TRIGGER usage_image_insert AFTER INSERT ON images WHEN NEW.uploaded BEGIN
        INSERT INTO collection_usage (collection_id, images, size)
        SELECT collection_id, 1, NEW.size FROM containers WHERE id = NEW.container_id
        ON CONFLICT (collection_id) DO UPDATE SET images = images + 1, size = size + excluded.size;
    END
    """,
    """
    CREATE TRIGGER usage_image_delete AFTER DELETE ON images WHEN OLD.uploaded BEGIN
        UPDATE collection_usage SET images = images - 1, size = size - OLD.size
        WHERE collection_id = (SELECT collection_id FROM containers WHERE id = OLD.container_id);
    END
    """,
    """
    CREATE TRIGGER usage_image_update AFTER UPDATE OF uploaded, size, container_id ON images BEGIN
        UPDATE collection_usage SET images = images - 1, size = size - OLD.size
        WHERE OLD.uploaded AND collection_id = (SELECT collection_id FROM containers WHERE id = OLD.container_id);
        INSERT INTO collection_usage (collection_id, images, size)
        SELECT collection_id, 1, NEW.size FROM containers WHERE NEW.uploaded AND id = NEW.container_id
        ON CONFLICT (collection_id) DO UPDATE SET images = images + 1, size = size + excluded.size;
    END
    """,
    # A container deleted with its images (a cascade) takes them off before they go, and they then find
    # no container; deleted one by one first, they have taken themselves off already.
    """
    CREATE TRIGGER usage_container_delete BEFORE DELETE ON containers BEGIN
        UPDATE collection_usage
        SET images = images - (SELECT count(*) FROM images WHERE container_id = OLD.id AND uploaded),
            size = size - (SELECT coalesce(sum(size), 0) FROM images WHERE container_id = OLD.id AND uploaded)
        WHERE collection_id = OLD.collection_id;
    END
    """,
)

POSTGRESQL_FUNCTIONS = (
    """
    CREATE FUNCTION usage_add(container integer, delta integer, bytes bigint) RETURNS void AS $$
        INSERT INTO collection_usage (collection_id, images, size)
        SELECT collection_id, delta, bytes FROM containers WHERE id = container
        ON CONFLICT (collection_id) DO UPDATE
        SET images = collection_usage.images + excluded.images, size = collection_usage.size + excluded.size;
    $$ LANGUAGE sql
    """,
    """
    CREATE FUNCTION usage_image_change() RETURNS trigger AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.uploaded THEN
            PERFORM usage_add(OLD.container_id, -1, -OLD.size);
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.uploaded THEN
            PERFORM usage_add(NEW.container_id, 1, NEW.size);
        END IF;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE FUNCTION usage_container_delete() RETURNS trigger AS $$
    BEGIN
        UPDATE collection_usage
        SET images = images - (SELECT count(*) FROM images WHERE container_id = OLD.id AND uploaded),
            size = size - (SELECT coalesce(sum(size), 0) FROM images WHERE container_id = OLD.id AND uploaded)
        WHERE collection_id = OLD.collection_id;
        RETURN OLD;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER usage_image_insert AFTER INSERT ON images FOR EACH ROW
    WHEN (NEW.uploaded) EXECUTE FUNCTION usage_image_change()
    """,
    """
    CREATE TRIGGER usage_image_delete AFTER DELETE ON images FOR EACH ROW
    WHEN (OLD.uploaded) EXECUTE FUNCTION usage_image_change()
    """,
    """
    CREATE TRIGGER usage_image_update AFTER UPDATE OF uploaded, size, container_id ON images FOR EACH ROW
    EXECUTE FUNCTION usage_image_change()
    """,
    """
    CREATE TRIGGER usage_container_delete BEFORE DELETE ON containers FOR EACH ROW
    EXECUTE FUNCTION usage_container_delete()
    """,
)

BACKFILL = """
    INSERT INTO collection_usage (collection_id, images, size)
    SELECT containers.collection_id, count(images.id), coalesce(sum(images.size), 0)
    FROM containers JOIN images ON images.container_id = containers.id
    WHERE images.uploaded
    GROUP BY containers.collection_id
"""


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "collection_usage",
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("images", sa.Integer(), server_default="0", nullable=False),
        sa.Column("size", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_collection_usage_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("collection_id", name=op.f("pk_collection_usage")),
    )
    op.execute(BACKFILL)
    for statement in POSTGRESQL_FUNCTIONS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)
    if postgresql:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table in NAME_INDEXES:
        kwargs = {"postgresql_using": "gin", "postgresql_ops": {"name": "gin_trgm_ops"}} if postgresql else {}
        op.create_index(name, table, ["name"], **kwargs)
    op.create_index("ix_images_container_listing", "images", ["container_id", "uploaded", "uploaded_at"])
    op.create_index("ix_collections_created_at", "collections", ["created_at"])
    op.create_index("ix_collections_updated_at", "collections", ["updated_at"])


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in ("ix_collections_updated_at", "ix_collections_created_at"):
        op.drop_index(name, table_name="collections")
    op.drop_index("ix_images_container_listing", table_name="images")
    for name, table in NAME_INDEXES:
        op.drop_index(name, table_name=table)
    triggers = [("usage_container_delete", "containers")]
    triggers += [(name, "images") for name in ("usage_image_insert", "usage_image_delete", "usage_image_update")]
    for name, table in triggers:
        op.execute(f"DROP TRIGGER {name} ON {table}" if postgresql else f"DROP TRIGGER {name}")
    if postgresql:
        for function in ("usage_container_delete()", "usage_image_change()", "usage_add(integer, integer, bigint)"):
            op.execute(f"DROP FUNCTION {function}")
    op.drop_table("collection_usage")
