"""The writer through real outages: a locked SQLite file, a PostgreSQL server gone away.

Events submitted during the outage stay in memory, flush reports that they are not yet
durable, and once the database is back everything is written, in order, exactly once.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Iterator

import anyio
import pytest
from sqlalchemy.engine import make_url

from khfsm.store import EventRecorder, StoreUnavailable, migrate, open_recorder
from khfsm.store.writer import EventWriter

from .reference_exercise import nose_track, record_session
from .tcp_proxy import TcpProxy

pytestmark = pytest.mark.anyio


async def _survives_outage(
    recorder: EventRecorder,
    begin_outage: object,
    end_outage: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert callable(begin_outage) and callable(end_outage)
    events, session_id = record_session(nose_track(3)), uuid.uuid4().hex
    half = len(events) // 2
    writer = EventWriter(
        recorder, max_delay_ms=20, flush_timeout_s=1.0, backoff_initial_s=0.05, backoff_max_s=0.2
    )
    caplog.set_level(logging.WARNING, logger="khfsm.store.writer")
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run)
        writer.submit(session_id, events[:half])
        await writer.flush(session_id)

        await anyio.to_thread.run_sync(begin_outage)
        for start in range(half, len(events), 10):
            writer.submit(session_id, events[start : start + 10])
        with pytest.raises(StoreUnavailable, match="kept in memory and retried"):
            await writer.flush(session_id)
        assert writer.pending_events > 0
        outage_lines = [r for r in caplog.records if "keeping" in r.getMessage()]
        assert len(outage_lines) == 1  # one readable line, not one per retry

        await anyio.to_thread.run_sync(end_outage)
        await writer.flush(session_id)
        assert writer.pending_events == 0
        assert any("reachable again" in r.getMessage() for r in caplog.records)
        group.cancel_scope.cancel()
    assert recorder.events(session_id) == events
    assert recorder.verify_chain(session_id).ok


async def test_writer_survives_a_locked_sqlite_database(
    sqlite_empty_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    migrate.upgrade(sqlite_empty_url)
    recorder = open_recorder(sqlite_empty_url, busy_timeout_ms=50)
    path = make_url(sqlite_empty_url).database
    assert path is not None
    # Another process holding the write lock for longer than the busy timeout: to the
    # writer exactly like a database it cannot write.
    locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def lock() -> None:
        locker.execute("BEGIN EXCLUSIVE")

    def unlock() -> None:
        locker.execute("COMMIT")

    try:
        await _survives_outage(recorder, lock, unlock, caplog)
    finally:
        locker.close()
        recorder.close()


@pytest.fixture
def proxied_postgres_url(postgres_empty_url: str) -> Iterator[tuple[str, TcpProxy]]:
    url = make_url(postgres_empty_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    try:
        yield url.set(port=proxy.port).render_as_string(hide_password=False), proxy
    finally:
        proxy.stop()


@pytest.mark.postgres
async def test_writer_survives_a_postgres_outage(
    proxied_postgres_url: tuple[str, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    url, proxy = proxied_postgres_url
    recorder = open_recorder(url, upgrade=True)
    try:
        await _survives_outage(recorder, proxy.stop, proxy.start, caplog)
    finally:
        recorder.close()
