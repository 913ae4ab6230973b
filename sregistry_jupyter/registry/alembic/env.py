"""Alembic environment: runs migrations on the connection ``db.upgrade`` hands over, inside its transaction."""

import logging

from alembic import context

from sregistry_jupyter.registry.orm import Base

log = logging.getLogger("sregistry_jupyter")


def log_step(ctx, step, heads, run_args) -> None:  # type: ignore[no-untyped-def]
    log.info("applied schema migration %s (%s)", step.up_revision_id, step.up_revision.doc)


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    on_version_apply=log_step,
)
with context.begin_transaction():
    context.run_migrations()
