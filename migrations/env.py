"""Alembic environment: runs migrations on the connection khfsm.store.migrate hands over,
or on one opened from `sqlalchemy.url` when Alembic is driven from its own command line.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from khfsm.store.engine import WRITE, create_store_engine
from khfsm.store.schema import metadata

config = context.config


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: let later migrations copy-and-move tables.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: set sqlalchemy.url or use `khfsm db upgrade`")
    engine = create_store_engine(url)
    try:
        with engine.connect().execution_options(**{WRITE: True}) as connection:
            run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run them online")
run_online()
