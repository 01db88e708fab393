"""Engines configured for the event store, one recipe per backend.

SQLite: WAL (readers never block the writer), synchronous=NORMAL (durable across a process
crash; a power cut may lose the last commits but never corrupts the file), a busy timeout
instead of instant "database is locked", foreign keys on. Transactions that write begin
with BEGIN IMMEDIATE: a deferred transaction that reads and then writes can fail with
SQLITE_BUSY at once, without waiting out the busy timeout, when another writer got in
between.

PostgreSQL (psycopg 3): a connect timeout so an unreachable server fails fast, and pre-ping
so that connections dropped by a server restart are replaced instead of failing a write.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

from khfsm.store.urls import is_sqlite, parse_url, sqlite_path

WRITE = "khfsm_write"  # execution option: this connection's transaction will write
DEFAULT_BUSY_TIMEOUT_MS = 5000
CONNECT_TIMEOUT_S = 5


def create_store_engine(url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> Engine:
    parsed = parse_url(url)
    if not is_sqlite(parsed):
        return create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "khfsm"},
        )
    path = sqlite_path(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let the "begin" hook below issue BEGIN instead of pysqlite's own, deferred one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine
