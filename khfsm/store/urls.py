"""Database URLs as people write them, turned into what SQLAlchemy needs.

Accepts `sqlite:///path` and `postgresql://...` (rewritten to the psycopg 3 driver, the one
installed). Passwords never appear in messages or logs: use `redact_database_url`.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from khfsm.store.recorder import StoreError

_POSTGRES_NAMES = {"postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"}


def parse_url(url: str | URL) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StoreError(
            f"{redact_database_url(url)} is not a database URL; use sqlite:///path/to/khfsm.sqlite "
            "or postgresql://user@host/dbname"
        ) from error
    if parsed.drivername in _POSTGRES_NAMES:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        return parsed
    raise StoreError(
        f"unsupported database {parsed.drivername!r} in {redact_database_url(parsed)}: "
        "khfsm stores events in SQLite (sqlite:///...) or PostgreSQL (postgresql://...)"
    )


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path | None:
    """The database file of an SQLite URL; None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def redact_database_url(url: str | URL) -> str:
    """The URL with its password masked, for messages and logs."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        parsed = None
    # A password with an unescaped "@" parses with the rest of it in the host: mask like an
    # unparseable URL, everything up to the last "@".
    if parsed is None or "@" in (parsed.host or ""):
        # Unparseable: still never echo what might be a password after "user:".
        text = str(url)
        if "@" in text and "://" in text:
            scheme, rest = text.split("://", 1)
            return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        return text
    return parsed.render_as_string(hide_password=True)
