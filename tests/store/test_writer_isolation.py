"""One session's events that the store cannot hold never stop the writer for the others.

A CaptureID of 2**63 does not fit a 64-bit integer column: SQLite's driver raises
OverflowError (not a driver error), PostgreSQL answers "bigint out of range". Either way
that session's flush fails, once and clearly, while another session's events, submitted
before and after, are all stored and the writer keeps running.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

import anyio
import pytest

from khfsm.domain.events import Event, SessionPrepared
from khfsm.store import EventRecorder, StoreError, open_recorder
from khfsm.store.writer import EventWriter

from .reference_exercise import nose_track, record_session

pytestmark = pytest.mark.anyio


def _oversized(events: list[Event]) -> list[Event]:
    prepared = events[0]
    assert isinstance(prepared, SessionPrepared)
    return [replace(prepared, capture_id=2**63), *events[1:]]


async def _isolated(recorder: EventRecorder, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="khfsm.store.writer")
    good, bad = record_session(nose_track(3)), _oversized(record_session(nose_track(2)))
    good_id, bad_id = uuid.uuid4().hex, uuid.uuid4().hex
    half = len(good) // 2
    writer = EventWriter(recorder, max_delay_ms=10)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(writer.run)
            writer.submit(good_id, good[:half])
            writer.submit(bad_id, bad)
            with pytest.raises(StoreError, match=bad_id):
                await writer.flush(bad_id)
            # The writer still runs: the rest of the other session arrives and is stored.
            writer.submit(good_id, good[half:])
            await writer.flush(good_id)
            group.cancel_scope.cancel()
    assert recorder.events(good_id) == good
    assert recorder.verify_chain(good_id).ok
    assert recorder.session(bad_id) is None
    refusals = [r for r in caplog.records if bad_id in r.getMessage()]
    assert len(refusals) >= 1
    assert not [r for r in caplog.records if good_id in r.getMessage()]


async def test_an_integer_sqlite_cannot_hold_fails_only_its_session(
    sqlite_empty_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = open_recorder(sqlite_empty_url, upgrade=True)
    try:
        await _isolated(recorder, caplog)
    finally:
        recorder.close()


@pytest.mark.postgres
async def test_an_integer_postgres_cannot_hold_fails_only_its_session(
    postgres_empty_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = open_recorder(postgres_empty_url, upgrade=True)
    try:
        await _isolated(recorder, caplog)
    finally:
        recorder.close()
