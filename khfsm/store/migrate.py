"""Schema migrations, driven from code: `khfsm db upgrade`, and the server on start.

Alembic owns the schema. The script directory is the installed `khfsm.migrations` package
(the top-level `migrations/` folder), located through importlib.resources so that it is
found from a wheel as well as from a checkout; no alembic.ini is needed.

On PostgreSQL, where several server nodes share one database, every migration runs under a
session-level advisory lock (keyed by the schema), so nodes starting at once apply it once:
the others wait, then find the schema at its head. A server applies migrations on start
(`upgrade_on_start`) to SQLite, and to an empty PostgreSQL database (its first start); a
PostgreSQL schema at an older revision is left to `khfsm db upgrade`, run on purpose,
because the other nodes may still be running the release that schema belongs to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from khfsm.store.engine import WRITE, StoreTimeouts, create_store_engine
from khfsm.store.recorder import StoreUnavailable
from khfsm.store.urls import is_sqlite, parse_url, redact_database_url

if TYPE_CHECKING:
    from khfsm.store.sql import SqlRecorder

log = logging.getLogger(__name__)

# Schema migrations of one PostgreSQL schema are serialized on this advisory lock.
LOCK_KEY_SQL = "hashtextextended('khfsm schema migrations ' || current_schema(), 0)"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("khfsm.migrations")))
    return config


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(url: str, revision: str = "head") -> str | None:
    """Bring the schema at `url` up to `revision`; returns the revision it is now at."""
    return _run(url, lambda config: command.upgrade(config, revision))


def upgrade_on_start(url: str) -> str | None:
    """What a server does with its store on start: SQLite is brought up to the head; an
    empty PostgreSQL database gets the whole schema (several nodes may do this at once); a
    PostgreSQL schema that has a revision is left as it is (`open_recorder` then says
    whether it needs `khfsm db upgrade`). Returns the revision the store is now at."""

    def first_start(config: Config) -> None:
        connection: Connection = config.attributes["connection"]
        revision = MigrationContext.configure(connection).get_current_revision()
        connection.commit()  # Alembic commits only a transaction it began itself
        if revision is None:
            command.upgrade(config, "head")
            log.info("event store at %s was empty: schema created", redact_database_url(url))

    if is_sqlite(parse_url(url)):
        return upgrade(url)
    return _run(url, first_start, doing="open")


def open_store_on_start(url: str, timeouts: StoreTimeouts | None = None) -> SqlRecorder:
    """The recorder a server opens on start, after `upgrade_on_start`; `StoreError` with
    one line saying what to do when the store is unreachable or at another revision."""
    from khfsm.store.sql import open_recorder

    upgrade_on_start(url)
    return open_recorder(url, timeouts=timeouts)


def downgrade(url: str, revision: str) -> str | None:
    """Undo migrations down to `revision` ("base" removes every table)."""
    return _run(url, lambda config: command.downgrade(config, revision))


def current(url: str) -> str | None:
    """The revision the schema at `url` is at; None when it has none (an empty database)."""
    engine = create_store_engine(url)
    try:
        return current_of(engine)
    except DBAPIError as error:
        raise StoreUnavailable(_unreachable(url, error)) from error
    finally:
        engine.dispose()


def current_of(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _run(url: str, action: Callable[[Config], None], doing: str = "migrate") -> str | None:
    engine = create_store_engine(url)
    config = alembic_config()
    try:
        with engine.connect().execution_options(**{WRITE: True}) as connection:
            # env.py runs on this connection instead of opening its own.
            config.attributes["connection"] = connection
            with _migration_lock(connection):
                action(config)
        return current_of(engine)
    except DBAPIError as error:
        raise StoreUnavailable(_unreachable(url, error, doing)) from error
    finally:
        engine.dispose()


@contextmanager
def _migration_lock(connection: Connection) -> Iterator[None]:
    """Hold PostgreSQL's advisory lock of this schema's migrations (SQLite: BEGIN IMMEDIATE
    already serializes writers)."""
    if connection.dialect.name != "postgresql":
        yield
        return
    connection.exec_driver_sql(f"SELECT pg_advisory_lock({LOCK_KEY_SQL})")
    # The lock belongs to the session and outlives this commit; Alembic then begins and
    # commits its own transaction (it would not commit one it found already open).
    connection.commit()
    try:
        yield
    finally:
        try:
            if connection.in_transaction():
                connection.rollback()  # a failed migration: leave nothing half-open
            connection.exec_driver_sql(f"SELECT pg_advisory_unlock({LOCK_KEY_SQL})")
            connection.commit()
        except DBAPIError:
            pass  # the connection is gone, and the session's lock with it


def _unreachable(url: str, error: DBAPIError, doing: str = "migrate") -> str:
    reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
    return (
        f"cannot {doing} the event store at {redact_database_url(url)}: {reason}; check that "
        "the database is running and that KHFSM_DATABASE_URL (or --database-url) is right"
    )
