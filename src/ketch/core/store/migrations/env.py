"""Alembic environment: runs on the connection ketch passes in ``attributes``."""

from __future__ import annotations

from alembic import context

from ketch.core.store._schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, transactional_ddl=True,
                  render_as_batch=connection.dialect.name == "sqlite")

with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Two control planes starting on a new database must not both migrate.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(74657463)")
    context.run_migrations()
