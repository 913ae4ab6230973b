"""a generation number for credentials, bumped by triggers whenever a token can change meaning

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Registry processes remember which bearer tokens they have verified, so that an authenticated request does not
need a database round trip for its identity (browser sessions are read on every request). What they remember
stays right because of ``generations``: a row per kind of cached fact whose number triggers bump, in the same
transaction, on every change that can alter what a token stands for (a token revoked or deleted, its scope or
expiry changed; a user disabled, deleted, renamed, made or unmade an administrator or staff, accepting the
terms). A process drops what it remembers when the number moves: at once after its own writes, and within one
bookkeeping interval after another process's (or the admin command's). Triggers rather than code in each
service, so that no code path (or cascade) can forget.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CREDENTIALS = "credentials"
# The tables and columns whose changes can alter what a credential stands for.
WATCHED = {
    "api_tokens": ("revoked_at", "expires_at", "scope", "user_id", "hashed"),
    "users": ("name", "is_admin", "is_staff", "is_robot", "terms_accepted_at", "disabled_at"),
}
BUMP = f"UPDATE generations SET value = value + 1 WHERE name = '{CREDENTIALS}'"


def sqlite_triggers() -> list[str]:
    statements = []
    for table, columns in WATCHED.items():
        statements.append(
            f"CREATE TRIGGER generation_{table}_update AFTER UPDATE OF {', '.join(columns)} ON {table} "
            f"BEGIN {BUMP}; END"
        )
        statements.append(f"CREATE TRIGGER generation_{table}_delete AFTER DELETE ON {table} BEGIN {BUMP}; END")
    return statements


def postgresql_triggers() -> list[str]:
    statements = [
        f"""
        CREATE FUNCTION bump_credentials_generation() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {BUMP};
            RETURN NULL;
        END
        $$
        """
    ]
    for table, columns in WATCHED.items():
        statements.append(
            f"CREATE TRIGGER generation_{table}_update AFTER UPDATE OF {', '.join(columns)} ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION bump_credentials_generation()"
        )
        statements.append(
            f"CREATE TRIGGER generation_{table}_delete AFTER DELETE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION bump_credentials_generation()"
        )
    return statements


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "generations",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_generations")),
    )
    op.execute(f"INSERT INTO generations (name, value) VALUES ('{CREDENTIALS}', 0)")
    for statement in postgresql_triggers() if postgresql else sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in WATCHED:
        for kind in ("update", "delete"):
            op.execute(f"DROP TRIGGER generation_{table}_{kind}" + (f" ON {table}" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION bump_credentials_generation()")
    op.drop_table("generations")
