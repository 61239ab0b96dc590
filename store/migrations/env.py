"""Alembic environment: runs on the engine handed over in ``config.attributes['engine']``."""

from __future__ import annotations

from alembic import context

from store.schema import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # the plain `alembic` CLI, via store/alembic.ini
    from pipepulse.settings import load_settings
    from store.db import connect

    engine = connect(load_settings().database_url)

with engine.begin() as connection:  # a write transaction (SQLite: BEGIN IMMEDIATE)
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
