"""Schema migrations, driven from code: `khfsm db upgrade`, and the server on start.

Alembic owns the schema. The script directory is the installed `khfsm.migrations` package
(the top-level `migrations/` folder), located through importlib.resources so that it is
found from a wheel as well as from a checkout; no alembic.ini is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from khfsm.store.engine import WRITE, create_store_engine
from khfsm.store.recorder import StoreUnavailable
from khfsm.store.urls import redact_database_url


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("khfsm.migrations")))
    return config


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(url: str, revision: str = "head") -> str | None:
    """Bring the schema at `url` up to `revision`; returns the revision it is now at."""
    return _run(url, lambda config: command.upgrade(config, revision))


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


def _run(url: str, action: Callable[[Config], None]) -> str | None:
    engine = create_store_engine(url)
    config = alembic_config()
    try:
        with engine.connect().execution_options(**{WRITE: True}) as connection:
            # env.py runs on this connection instead of opening its own.
            config.attributes["connection"] = connection
            action(config)
        return current_of(engine)
    except DBAPIError as error:
        raise StoreUnavailable(_unreachable(url, error)) from error
    finally:
        engine.dispose()


def _unreachable(url: str, error: DBAPIError) -> str:
    reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
    return f"cannot migrate the event store at {redact_database_url(url)}: {reason}"
