"""Alembic environment: migrations run on the connection handed over by core_assets.db.engine."""

from alembic import context

from core_assets.db.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
