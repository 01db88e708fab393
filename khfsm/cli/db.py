"""`khfsm db`: the event store's schema, applied by Alembic. Also the CLI's way to the store.

The server applies migrations itself on start to SQLite and to an empty PostgreSQL database
(its first start, under an advisory lock); a PostgreSQL schema at an older revision is
upgraded on purpose with `khfsm db upgrade`, once per release (`khfsm.store.migrate`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from khfsm.settings import load_settings

F = TypeVar("F", bound=Callable[..., Any])


def database_url_option(function: F) -> F:
    return click.option(
        "--database-url",
        default=None,
        metavar="URL",
        help="Event store (default: $KHFSM_DATABASE_URL, the config file, else the SQLite "
        "file in the data directory).",
    )(function)


def resolve_database_url(ctx: click.Context, database_url: str | None) -> str:
    """The URL from the flag, else KHFSM_DATABASE_URL, else the config file, else default."""
    root = ctx.find_root().obj or {}
    settings = load_settings(root.get("config_file"), database_url=database_url)
    return settings.resolved_database_url


def open_store(ctx: click.Context, database_url: str | None) -> Any:
    """An open recorder for a CLI command; store errors become readable CLI errors."""
    from khfsm.store import StoreError, open_recorder
    from khfsm.store.urls import is_sqlite, parse_url

    url = resolve_database_url(ctx, database_url)
    try:
        # An embedded SQLite store is brought up to date like the server does; a shared
        # PostgreSQL store is migrated only on purpose, with `khfsm db upgrade`.
        return open_recorder(url, upgrade=is_sqlite(parse_url(url)))
    except StoreError as error:
        raise click.ClickException(str(error)) from error


@click.group()
def db() -> None:
    """Manage the event store's schema (Alembic migrations)."""


@db.command()
@database_url_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_context
def upgrade(ctx: click.Context, database_url: str | None, revision: str) -> None:
    """Create or update the event store's tables."""
    from khfsm.store import StoreError, migrate
    from khfsm.store.urls import redact_database_url

    url = resolve_database_url(ctx, database_url)
    try:
        before = migrate.current(url)
        after = migrate.upgrade(url, revision)
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    if before == after:
        click.echo(f"event store at {redact_database_url(url)} is already at revision {after}")
    else:
        where = redact_database_url(url)
        click.echo(f"event store at {where} upgraded from {before or 'empty'} to {after}")


@db.command()
@database_url_option
@click.pass_context
def current(ctx: click.Context, database_url: str | None) -> None:
    """Show the schema revision of the event store and the one this khfsm expects."""
    from khfsm.store import StoreError, migrate
    from khfsm.store.urls import redact_database_url

    url = resolve_database_url(ctx, database_url)
    try:
        revision = migrate.current(url)
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    head = migrate.head()
    verdict = "up to date" if revision == head else "run `khfsm db upgrade`"
    where = redact_database_url(url)
    click.echo(f"{where}: revision {revision or 'none (empty)'}; expected {head} ({verdict})")
