"""With a spool, the database may be written less often than the spool is: each event is safe
on disk at the spool's tick, the database gets fewer, larger transactions, and a `flush` still
writes at once rather than at the database's next tick."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import anyio
import pytest

from khfsm.store import open_recorder
from khfsm.store.spool import Spool
from khfsm.store.writer import EventWriter

from .reference_exercise import nose_track, record_session

pytestmark = pytest.mark.anyio

DATABASE_DELAY_S = 30.0  # far longer than the test: the database tick never comes


async def test_the_database_lags_the_spool_until_a_flush(
    sqlite_empty_url: str, tmp_path: Path
) -> None:
    recorder = open_recorder(sqlite_empty_url, upgrade=True)
    spool = Spool(tmp_path / "spool", "the-store").open()
    writer = EventWriter(
        recorder, spool=spool, max_delay_ms=10, database_delay_ms=DATABASE_DELAY_S * 1000
    )
    session_id = uuid.uuid4().hex
    events = record_session(nose_track(2))
    half = len(events) // 2
    with anyio.fail_after(DATABASE_DELAY_S / 2):
        async with anyio.create_task_group() as group:
            group.start_soon(writer.run)
            group.start_soon(writer.run_spool)
            await anyio.sleep(0.2)  # the first database tick, at start, found nothing
            writer.submit(session_id, events[:half])
            spooled = anyio.Event()
            writer.when_spooled(session_id, spooled.set)
            await spooled.wait()
            for _ in range(20):  # spool ticks go by: the database is not written
                await anyio.sleep(0.01)
            assert spool.read(session_id).records, "the spool holds the events"
            assert recorder.session(session_id) is None, "the database waits for its tick"
            writer.submit(session_id, events[half:])
            started = time.monotonic()
            await writer.flush(session_id)
            took = time.monotonic() - started
            group.cancel_scope.cancel()
    assert took < DATABASE_DELAY_S / 4, f"flush waited {took:.1f} s for the database tick"
    assert recorder.events(session_id) == events
    assert recorder.verify_chain(session_id).ok
    spool.close()


async def test_a_full_batch_is_written_at_once_however_many_sessions_wait(
    sqlite_empty_url: str,
) -> None:
    """The early write is for a session whose batch is full, not for many sessions' events
    together: a hundred lanes submit 2,000 events a second, and a threshold over the sum
    would write every few ticks whatever the database's own tick says."""
    recorder = open_recorder(sqlite_empty_url, upgrade=True)
    batch = 5
    writer = EventWriter(recorder, database_delay_ms=DATABASE_DELAY_S * 1000, max_batch=batch)
    events = record_session(nose_track(2))
    waiting = [uuid.uuid4().hex for _ in range(3 * batch)]
    full = uuid.uuid4().hex
    with anyio.fail_after(DATABASE_DELAY_S / 2):
        async with anyio.create_task_group() as group:
            group.start_soon(writer.run)
            await anyio.sleep(0.2)  # the first database tick, at start, found nothing
            for session_id in waiting:  # more events in all than a batch, one each
                writer.submit(session_id, events[:1])
            await anyio.sleep(0.3)
            stored = [recorder.session(session_id) for session_id in waiting]
            assert stored == [None] * len(waiting), "a write came before the database's tick"
            writer.submit(full, events[:batch])
            for _ in range(500):  # within 5 s, far before the database's tick
                if recorder.session(full) is not None:
                    break
                await anyio.sleep(0.01)
            group.cancel_scope.cancel()
    # written by the early wake (which writes every session's events, the waiting ones too)
    assert recorder.events(full) == events[:batch]
