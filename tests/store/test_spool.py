"""The local spool and crash recovery on a real store.

The writer spools every event (fsync'd) before the database and removes the file once the
session's end is durable; at start-up `recover` drains what a crash left behind without
storing anything twice, and ends the sessions left open with -7, their recording hashed,
in a way `replay` re-derives exactly.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from khfsm.domain.codec import encode
from khfsm.domain.codes import EndStatus
from khfsm.domain.events import Event, SessionEnded, SessionPrepared, SourceFailed
from khfsm.domain.replay import replay
from khfsm.registry import get_exercise
from khfsm.store import EventRecorder, open_recorder
from khfsm.store.recovery import recover
from khfsm.store.spool import Spool, SpoolError
from khfsm.store.writer import EventWriter

from .reference_exercise import nose_track, record_session

pytestmark = pytest.mark.anyio


@pytest.fixture
def recorder(sqlite_empty_url: str) -> EventRecorder:
    opened = open_recorder(sqlite_empty_url, upgrade=True)
    yield opened  # type: ignore[misc]
    opened.close()


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    opened = Spool(tmp_path / "spool", "the-store").open()
    yield opened  # type: ignore[misc]
    opened.close()


def pushup_session(tmp_path: Path, *, stop_at: int | None = None) -> list[Event]:
    """A pushup session over synthetic poses; its video is a small file under tmp_path."""
    exercise = get_exercise("pushup")
    events = record_session(nose_track(4), exercise=exercise, stop_at=stop_at)
    video = tmp_path / f"{uuid.uuid4().hex}.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypiso6" + bytes(range(256)) * 40)
    prepared = events[0]
    assert isinstance(prepared, SessionPrepared)
    return [replace(prepared, video_path=str(video)), *events[1:]]


async def test_the_writer_spools_before_the_database_and_removes_ended_sessions(
    recorder: EventRecorder, spool: Spool, tmp_path: Path
) -> None:
    events = pushup_session(tmp_path)
    assert isinstance(events[-1], SessionEnded)
    session_id = uuid.uuid4().hex
    writer = EventWriter(recorder, spool=spool, max_delay_ms=10)
    path = spool.directory / f"{session_id}.jsonl"
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run)
        group.start_soon(writer.run_spool)
        writer.submit(session_id, events[:-1])
        await writer.flush(session_id)
        on_disk = spool.read(session_id)
        assert on_disk.first_seq == 0
        assert on_disk.records == [encode(e) for e in events[:-1]]
        assert on_disk.database == "the-store"
        writer.submit(session_id, events[-1:])
        await writer.flush(session_id)
        assert not path.exists()  # ended and durable: nothing left to recover
        group.cancel_scope.cancel()
    assert recorder.events(session_id) == events


async def test_recovery_drains_the_spool_once_and_ends_the_session_with_minus_7(
    recorder: EventRecorder, spool: Spool, tmp_path: Path
) -> None:
    # A crash while running: the database has the first events, the spool a few more
    # (written and fsync'd, not yet in the database), the last line cut short.
    events = pushup_session(tmp_path)[:-30]
    session_id = uuid.uuid4().hex
    in_database = 100
    recorder.append(session_id, 0, events[:in_database])
    spool.append(session_id, 0, [encode(e) for e in events])
    spool.sync()
    with (spool.directory / f"{session_id}.jsonl").open("ab") as file:
        file.write(b'{"seq": 99999, "type": "Frame')  # torn by the crash

    report = recover(recorder, spool, every_open_session=False)

    stored = recorder.events(session_id)
    assert stored[: len(events)] == events  # every spooled event, each once
    assert recorder.verify_chain(session_id).ok
    assert report.drained == 1 and report.events == len(events) - in_database
    crashed = stored[len(events)]
    assert isinstance(crashed, SourceFailed) and crashed.status == EndStatus.SERVER_CRASHED
    end = stored[-1]
    assert isinstance(end, SessionEnded)
    assert (end.status, end.message) == (-7, "server stopped unexpectedly")
    prepared = events[0]
    assert isinstance(prepared, SessionPrepared)
    video = await anyio.Path(prepared.video_path).read_bytes()
    assert end.video_sha256 == hashlib.sha256(video).hexdigest()
    assert end.video_bytes == len(video)
    row = recorder.session(session_id)
    assert row is not None and row.end_status == -7
    assert replay(stored, get_exercise("pushup")).identical
    assert not list(spool.directory.glob("*.jsonl"))
    # A second start finds nothing more to do.
    again = recover(recorder, spool, every_open_session=True)
    assert (again.drained, again.ended) == (0, [])


async def test_an_end_the_stored_inputs_decide_is_kept_not_overwritten_with_minus_7(
    recorder: EventRecorder, spool: Spool, tmp_path: Path
) -> None:
    # The operator's stop was stored, its derived end not yet (the crash hit in between).
    events = pushup_session(tmp_path, stop_at=150)
    assert isinstance(events[-1], SessionEnded) and events[-1].status == EndStatus.STOPPED
    session_id = uuid.uuid4().hex
    recorder.append(session_id, 0, events[:-1])

    report = recover(recorder, spool, every_open_session=True)

    assert [ended.status for ended in report.ended] == [EndStatus.STOPPED]
    stored = recorder.events(session_id)
    assert stored[:-1] == events[:-1]
    assert stored[-1] == events[-1].sealed(
        report.ended[0].video_sha256, report.ended[0].video_bytes
    )
    assert replay(stored, get_exercise("pushup")).identical


async def test_a_spool_that_disagrees_with_the_store_is_set_aside_not_drained(
    recorder: EventRecorder, spool: Spool, tmp_path: Path
) -> None:
    events = pushup_session(tmp_path)
    other = pushup_session(tmp_path, stop_at=100)
    session_id = uuid.uuid4().hex
    recorder.append(session_id, 0, events)
    spool.append(session_id, 0, [encode(e) for e in other[:5]])
    spool.sync()

    report = recover(recorder, spool, every_open_session=False)

    assert [path.name for path in report.set_aside] == [f"{session_id}.jsonl.refused"]
    assert recorder.events(session_id) == events


def test_one_server_at_a_time_owns_a_spool_directory(spool: Spool) -> None:
    with pytest.raises(SpoolError, match="another khfsm server uses the spool directory"):
        Spool(spool.directory, "the-store").open()
    spool.close()
    Spool(spool.directory, "the-store").open().close()  # free again once the first closed


async def test_what_a_lane_tells_its_tablet_waits_for_the_spool(
    recorder: EventRecorder, spool: Spool, tmp_path: Path
) -> None:
    events, session_id = pushup_session(tmp_path), uuid.uuid4().hex
    writer = EventWriter(recorder, spool=spool, max_delay_ms=10)
    told: list[int] = []
    writer.submit(session_id, events[:10])
    writer.when_spooled(session_id, lambda: told.append(spool.read(session_id).next_seq))
    assert told == []  # nothing is on the disk yet
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run)
        group.start_soon(writer.run_spool)
        await writer.flush(session_id)
        group.cancel_scope.cancel()
    assert told == [10]  # told once all ten were in the spool file


async def test_a_waiting_push_spools_at_once_not_at_the_next_tick(
    recorder: EventRecorder, spool: Spool, tmp_path: Path
) -> None:
    events, session_id = pushup_session(tmp_path), uuid.uuid4().hex
    # A tick of a minute: only the waiter's own wake-up can spool within the 10 s below.
    writer = EventWriter(recorder, spool=spool, max_delay_ms=60_000)
    told = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run_spool)
        writer.submit(session_id, events[:10])
        writer.when_spooled(session_id, told.set)
        with anyio.fail_after(10):
            await told.wait()
        assert spool.read(session_id).next_seq == 10
        group.cancel_scope.cancel()
