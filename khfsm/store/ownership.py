"""One server per SQLite store.

A server on SQLite ends, at its start, every session stored open (`khfsm.store.recovery`):
the embedded file is its own, so a session open in it can only be one its crash left. Two
servers given the same SQLite file (one `KHFSM_DATABASE_URL` for servers with their own
data directories) would end each other's running sessions at every restart. So the server
holds an advisory lock beside the file for as long as it runs, and a second server is
refused with what to do instead. The command-line tools (`khfsm sessions`, `replay`, …)
read and write the store without it: they never end sessions they did not open.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

from khfsm.store.recorder import StoreError

# Also the README's section title, which the refusal names.
SEVERAL_SERVERS = "More lanes than one process carries"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite store URL; None for another database or SQLite in memory."""
    from khfsm.store.urls import is_sqlite, parse_url

    parsed = parse_url(url)
    if not is_sqlite(parsed) or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def lock_path(database: Path) -> Path:
    return database.with_name(f"{database.name}.server-lock")


def hold_lock(path: Path) -> IO[bytes] | None:
    """An exclusive advisory lock on the file `path` (created if need be), held until the
    returned file is closed or the process ends, crash included; None when another process
    holds it. Raises `OSError` when the file cannot be opened."""
    lock_file = path.open("ab")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock_file.close()
        return None
    return lock_file


def claim_sqlite_store(database: Path) -> IO[bytes]:
    """Take the server lock of the SQLite store `database` (its directory must exist); the
    lock is held until the returned file is closed. Raises `StoreError` when another server
    holds it."""
    try:
        lock_file = hold_lock(lock_path(database))
    except OSError as error:
        raise StoreError(f"cannot lock the SQLite store {database}: {error}") from error
    if lock_file is None:
        raise StoreError(
            f"another khfsm server uses the SQLite store {database}: a server on SQLite ends "
            "every session stored open when it starts, so the file belongs to one server. "
            "Give each server its own data directory, or share a PostgreSQL store (README: "
            f'"{SEVERAL_SERVERS}")'
        )
    return lock_file
