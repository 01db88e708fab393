"""Engines configured for the event store, one recipe per backend.

SQLite: WAL (readers never block the writer), synchronous=NORMAL (durable across a process
crash; a power cut may lose the last commits but never corrupts the file), a busy timeout
instead of instant "database is locked", foreign keys on. Transactions that write begin
with BEGIN IMMEDIATE: a deferred transaction that reads and then writes can fail with
SQLITE_BUSY at once, without waiting out the busy timeout, when another writer got in
between.

PostgreSQL (psycopg 3): a connect timeout so an unreachable server fails fast, a statement
timeout so a stuck query does not hold the writer, TCP keepalives and a TCP user timeout so
a connection whose packets are dropped (a blackholed network) is noticed within about the
same time instead of after the kernel's many-minute retransmission limit, and pre-ping so
that connections dropped by a server restart are replaced instead of failing a write.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event

from khfsm.store.urls import is_sqlite, parse_url, sqlite_path

WRITE = "khfsm_write"  # execution option: this connection's transaction will write
DEFAULT_BUSY_TIMEOUT_MS = 5000
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class StoreTimeouts:
    """How long the store waits before calling the database unavailable."""

    connect_s: float = CONNECT_TIMEOUT_S  # PostgreSQL: establishing a connection
    statement_s: float = STATEMENT_TIMEOUT_S  # PostgreSQL: one statement (0: no limit)
    busy_ms: int = DEFAULT_BUSY_TIMEOUT_MS  # SQLite: waiting for another writer's lock

    @property
    def answer_s(self) -> float:
        """The longest a healthy database takes to answer one write: connect, then a
        statement. Past it the writer abandons the call as an outage."""
        return self.connect_s + self.statement_s


def create_store_engine(
    url: str,
    *,
    busy_timeout_ms: int | None = None,
    timeouts: StoreTimeouts | None = None,
) -> Engine:
    # Without explicit timeouts (migrations, the offline commands) no statement is cut
    # short: a migration of a large store may rightly take minutes.
    timeouts = timeouts or StoreTimeouts(statement_s=0)
    if busy_timeout_ms is None:
        busy_timeout_ms = timeouts.busy_ms
    parsed = parse_url(url)
    if not is_sqlite(parsed):
        return create_engine(
            parsed, pool_pre_ping=True, connect_args=_postgres_args(parsed, timeouts)
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


def _postgres_args(url: URL, timeouts: StoreTimeouts) -> dict[str, Any]:
    # libpq takes whole seconds (and reads 1 as 2).
    args: dict[str, Any] = {
        "connect_timeout": max(1, math.ceil(timeouts.connect_s)),
        "application_name": "khfsm",
    }
    if timeouts.statement_s > 0:
        # Given in connect_args, "options" would replace the URL's own (e.g. a search_path).
        options = url.query.get("options", "")
        if not isinstance(options, str):
            options = " ".join(options)
        statement_ms = int(timeouts.statement_s * 1000)
        args["options"] = f"{options} -c statement_timeout={statement_ms}".strip()
        # A peer that stops acknowledging (dropped packets) fails the socket after this long
        # instead of TCP's ~15 minutes; keepalives probe an idle connection the same way.
        answer = max(1, math.ceil(timeouts.answer_s))
        args.update(
            tcp_user_timeout=answer * 1000,
            keepalives=1,
            keepalives_idle=answer,
            keepalives_interval=max(1, answer // 3),
            keepalives_count=3,
        )
    return args
