"""The writer lets go of a session once it has ended and all its events are stored.

A server runs for weeks: every submit and every tick walks the sessions the writer holds, so
holding every session since the start would slow each frame down a little more each day and
grow without bound.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import pytest

from khfsm.domain.events import SessionEnded
from khfsm.store import open_recorder
from khfsm.store.spool import Spool
from khfsm.store.writer import EventWriter

from .reference_exercise import nose_track, record_session

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("spooled", [False, True], ids=["database only", "with a spool"])
async def test_ended_and_stored_sessions_are_let_go(
    sqlite_empty_url: str, tmp_path: Path, spooled: bool
) -> None:
    recorder = open_recorder(sqlite_empty_url, upgrade=True)
    spool = Spool(tmp_path / "spool", "the-store").open() if spooled else None
    writer = EventWriter(recorder, spool=spool, max_delay_ms=10)
    ended = [uuid.uuid4().hex for _ in range(5)]
    running = uuid.uuid4().hex
    session = record_session(nose_track(2))
    assert isinstance(session[-1], SessionEnded)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(writer.run)
            if spool is not None:
                group.start_soon(writer.run_spool)
            for session_id in ended:
                writer.submit(session_id, session)
            writer.submit(running, session[:-1])
            assert writer.sessions_held == 6
            for session_id in ended:
                await writer.flush(session_id)
            await writer.flush(running)
            assert writer.sessions_held == 1  # the one still running is held
            # A let-go session has nothing left to wait for
            await writer.flush(ended[0])
            called: list[str] = []
            writer.when_spooled(ended[0], lambda: called.append("at once"))
            assert called == ["at once"]
            writer.submit(running, session[-1:])
            await writer.flush(running)
            assert writer.sessions_held == 0
            group.cancel_scope.cancel()
    for session_id in [*ended, running]:
        assert recorder.events(session_id) == session
        assert recorder.verify_chain(session_id).ok
    if spool is not None:
        assert spool.left_behind() == [], "a stored session's spool file stayed"
        spool.close()
