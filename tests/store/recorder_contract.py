"""The recorder contract: one abstract test case, run against every backend.

A backend's test module subclasses `RecorderContract` and provides the `empty_url` fixture
(a database without tables). Everything here goes through the public API, the real
database and, for tampering, plain SQL: no mocks.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import anyio
import anyio.lowlevel
import pytest
import sqlalchemy
from click.testing import CliRunner

from khfsm.cli.main import cli
from khfsm.domain.codec import GENESIS_HASH
from khfsm.domain.events import Event, FrameObserved, RepCounted, SessionEnded
from khfsm.registry import installed_tasks
from khfsm.store import (
    EventRecorder,
    SequenceConflict,
    StoreError,
    migrate,
    open_recorder,
)
from khfsm.store.writer import EventWriter

from .reference_exercise import REFERENCE, TOO_FAST, nose_track, record_session
from .sql_helpers import execute, scalar


def new_id() -> str:
    return uuid.uuid4().hex


def a_session(reps: int = 3, **kwargs: object) -> list[Event]:
    return record_session(nose_track(reps, fast_every=2), **kwargs)  # type: ignore[arg-type]


class RecorderContract:
    @pytest.fixture
    def empty_url(self) -> str:
        raise NotImplementedError("a backend's test case provides an empty database")

    @pytest.fixture
    def url(self, empty_url: str) -> str:
        migrate.upgrade(empty_url)
        return empty_url

    @pytest.fixture
    def recorder(self, url: str) -> Iterator[EventRecorder]:
        recorder = open_recorder(url)
        yield recorder
        recorder.close()

    @pytest.fixture
    def reference_registered(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # The reference rules stand in for an installed exercise plug-in for the CLI.
        monkeypatch.setitem(installed_tasks(), REFERENCE.task, {REFERENCE.rules_version: REFERENCE})

    # -- migrations ---------------------------------------------------------------------------

    def test_migrations_upgrade_an_empty_database(self, empty_url: str) -> None:
        assert migrate.current(empty_url) is None
        with pytest.raises(StoreError, match="khfsm db upgrade"):
            open_recorder(empty_url)
        assert migrate.upgrade(empty_url) == migrate.head()
        assert migrate.upgrade(empty_url) == migrate.head()  # idempotent
        tables = set(sqlalchemy.inspect(_engine(empty_url)).get_table_names())
        assert {"events", "sessions", "alembic_version"} <= tables
        assert migrate.downgrade(empty_url, "base") is None
        assert "events" not in sqlalchemy.inspect(_engine(empty_url)).get_table_names()

    def test_open_with_upgrade_creates_the_schema(self, empty_url: str) -> None:
        recorder = open_recorder(empty_url, upgrade=True)
        try:
            assert recorder.list_sessions() == []
        finally:
            recorder.close()

    # -- append and read ------------------------------------------------------------------------

    def test_appends_read_back_in_order_and_equal(self, recorder: EventRecorder) -> None:
        events, session_id = a_session(), new_id()
        written = 0
        for size in (2, 1, 17, 50, 1000):
            batch = events[written : written + size]
            stored = recorder.append(session_id, written, batch)
            assert [s.seq for s in stored] == list(range(written, written + len(batch)))
            written += len(batch)
        read = recorder.read(session_id)
        assert [s.seq for s in read] == list(range(len(events)))
        assert [s.event for s in read] == events
        frames = [s.event for s in read if isinstance(s.event, FrameObserved)]
        assert any(f.keypoints is None for f in frames) and any(f.keypoints for f in frames)

    def test_keypoints_are_stored_as_binary(self, recorder: EventRecorder, url: str) -> None:
        events, session_id = a_session(1), new_id()
        recorder.append(session_id, 0, events)
        seq = next(i for i, e in enumerate(events) if isinstance(e, FrameObserved) and e.keypoints)
        payload = scalar(url, "select payload from events where session_id=:s and seq=:q",
                         s=session_id, q=seq)  # fmt: skip
        blob = scalar(url, "select blob from events where session_id=:s and seq=:q",
                      s=session_id, q=seq)  # fmt: skip
        assert "keypoints" not in json.loads(payload)
        assert len(blob) == 33 * 5 * 4 + 33 * 3 * 4

    def test_unknown_session_reads_empty(self, recorder: EventRecorder) -> None:
        assert recorder.read("nobody") == []
        assert recorder.session("nobody") is None

    def test_hashes_chain_from_genesis(self, recorder: EventRecorder) -> None:
        session_id = new_id()
        stored = recorder.append(session_id, 0, a_session(1))
        assert stored[0].prev_hash == GENESIS_HASH
        for previous, current in itertools.pairwise(stored):
            assert current.prev_hash == previous.hash
        assert [s.hash for s in recorder.read(session_id)] == [s.hash for s in stored]

    def test_sessions_are_independent(self, recorder: EventRecorder) -> None:
        first, second = new_id(), new_id()
        recorder.append(first, 0, a_session(1, capture_id=1))
        recorder.append(second, 0, a_session(2, capture_id=2))
        assert recorder.read(first)[0].event.capture_id == 1  # type: ignore[attr-defined]
        assert recorder.read(second)[0].event.capture_id == 2  # type: ignore[attr-defined]

    # -- conflicts and atomicity ------------------------------------------------------------------

    def test_duplicate_seq_conflicts(self, recorder: EventRecorder) -> None:
        events, session_id = a_session(), new_id()
        recorder.append(session_id, 0, events[:10])
        with pytest.raises(SequenceConflict, match=r"next seq is 10.*duplicate"):
            recorder.append(session_id, 9, events[9:12])
        with pytest.raises(SequenceConflict):
            recorder.append(session_id, 0, events[:1])
        assert len(recorder.read(session_id)) == 10

    def test_gap_conflicts(self, recorder: EventRecorder) -> None:
        events, session_id = a_session(), new_id()
        recorder.append(session_id, 0, events[:10])
        with pytest.raises(SequenceConflict, match=r"next seq is 10.*gap"):
            recorder.append(session_id, 11, events[11:12])
        assert recorder.append(session_id, 10, events[10:11])[0].seq == 10

    def test_a_new_session_starts_at_zero_with_session_prepared(
        self, recorder: EventRecorder
    ) -> None:
        events = a_session()
        with pytest.raises(SequenceConflict, match="not stored"):
            recorder.append(new_id(), 3, events[3:5])
        with pytest.raises(StoreError, match="SessionPrepared"):
            recorder.append(new_id(), 0, events[1:3])
        with pytest.raises(StoreError, match="SessionPrepared"):
            session_id = new_id()
            recorder.append(session_id, 0, events[:1])
            recorder.append(session_id, 1, events[:1])

    def test_a_failing_batch_leaves_nothing(self, recorder: EventRecorder, url: str) -> None:
        events, session_id = a_session(), new_id()
        recorder.append(session_id, 0, events[:10])
        # Another writer slipped a row in at seq 13 behind the recorder's back: the batch
        # 10..19 fails at that row, after 10..12 went in, and must leave none of them.
        execute(
            url,
            "insert into events (session_id, seq, type, version, payload, hash, prev_hash, "
            "recorded_at) values (:s, 13, 'SessionStarted', 1, '{}', 'x', 'y', :t)",
            s=session_id,
            t=datetime.now(UTC),
        )
        with pytest.raises(SequenceConflict, match="nothing of the batch was stored"):
            recorder.append(session_id, 10, events[10:20])
        seqs = [s.seq for s in recorder.read_records(session_id)]
        assert seqs == [*range(10), 13]
        summary = recorder.session(session_id)
        assert summary is not None and summary.events == 10

    def test_an_unencodable_event_stores_nothing(self, recorder: EventRecorder) -> None:
        events, session_id = a_session(), new_id()
        recorder.append(session_id, 0, events[:5])
        bad = RepCounted(
            rep=1, status=(0,), start_frame=0, end_frame=1, time=(0.0, 0.1), count=1, total=1,
            measurements={"angle": float("nan")},
        )  # fmt: skip
        with pytest.raises(StoreError, match="event 7"):
            recorder.append(session_id, 5, [*events[5:7], bad])
        assert len(recorder.read(session_id)) == 5

    def test_concurrent_appends_at_the_same_seq_one_wins(self, url: str) -> None:
        events, session_id = a_session(), new_id()
        recorders = [open_recorder(url), open_recorder(url)]
        recorders[0].append(session_id, 0, events[:5])
        barrier = threading.Barrier(2)
        outcomes: list[object] = [None, None]

        def append(index: int) -> None:
            barrier.wait()
            try:
                outcomes[index] = recorders[index].append(session_id, 5, events[5:40])
            except StoreError as error:
                outcomes[index] = error

        threads = [threading.Thread(target=append, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for recorder in recorders:
            recorder.close()
        assert sorted(type(o).__name__ for o in outcomes) == ["SequenceConflict", "list"]
        check = open_recorder(url)
        assert [s.event for s in check.read(session_id)] == events[:40]
        assert check.verify_chain(session_id).ok
        check.close()

    # -- summaries and listing ------------------------------------------------------------------

    def test_summary_follows_the_events(self, recorder: EventRecorder) -> None:
        events, session_id = a_session(4), new_id()
        recorder.append(session_id, 0, events[:2])
        row = recorder.session(session_id)
        assert row is not None and (row.state, row.task, row.capture_id) == (
            "running",
            "reference",
            2,
        )
        recorder.append(session_id, 2, events[2:])
        row = recorder.session(session_id)
        ended = events[-1]
        assert isinstance(ended, SessionEnded)
        assert row is not None
        assert (row.state, row.end_status, row.count, row.total, row.frames, row.events) == (
            "stopped", -2, ended.count, ended.total, ended.frames, len(events)
        )  # fmt: skip

    def test_list_sessions_filters(self, recorder: EventRecorder) -> None:
        before = datetime.now(UTC) - timedelta(seconds=1)
        stopped = a_session(3, stop_at=50, capture_id=1)
        timed_out = a_session(2, capture_id=2)
        running = a_session(2, capture_id=3)[:20]
        ids = {}
        for name, events in (("stopped", stopped), ("timed_out", timed_out), ("running", running)):
            ids[name] = new_id()
            recorder.append(ids[name], 0, events)
        after = datetime.now(UTC) + timedelta(seconds=1)

        def listed(**filters: object) -> list[str]:
            return [row.session_id for row in recorder.list_sessions(**filters)]  # type: ignore[arg-type]

        assert listed() == [ids["running"], ids["timed_out"], ids["stopped"]]  # newest first
        assert listed(capture_id=2) == [ids["timed_out"]]
        assert listed(end_status=-1) == [ids["stopped"]]
        assert listed(state="running") == [ids["running"]]
        assert listed(task="reference", limit=2) == [ids["running"], ids["timed_out"]]
        assert listed(task="pushup") == []
        assert len(listed(since=before, until=after)) == 3
        assert listed(until=before) == [] and listed(since=after) == []

    # -- the hash chain -------------------------------------------------------------------------

    def test_an_intact_chain_verifies(self, recorder: EventRecorder) -> None:
        events, session_id = a_session(), new_id()
        recorder.append(session_id, 0, events)
        report = recorder.verify_chain(session_id)
        assert report.ok and report.first_bad_seq is None and report.events == len(events)

    def test_an_edited_payload_names_its_row(self, recorder: EventRecorder, url: str) -> None:
        session_id, seq = self._stored_with_rep(recorder)
        execute(
            url,
            "update events set payload = replace(payload, :old, :new) "
            "where session_id = :s and seq = :q",
            old='"count":1',
            new='"count":2',
            s=session_id,
            q=seq,
        )
        report = recorder.verify_chain(session_id)
        assert (report.ok, report.first_bad_seq) == (False, seq)
        assert f"event {seq} (RepCounted) was altered" in report.message

    def test_an_edited_keypoint_blob_names_its_row(self, recorder: EventRecorder, url: str) -> None:
        events, session_id = a_session(), new_id()
        recorder.append(session_id, 0, events)
        seq = _tamper_blob(url, session_id, events)
        report = recorder.verify_chain(session_id)
        assert (report.ok, report.first_bad_seq) == (False, seq)
        assert f"event {seq} (FrameObserved) was altered" in report.message

    def test_removed_rows_are_detected(self, recorder: EventRecorder, url: str) -> None:
        events, session_id = a_session(), new_id()
        recorder.append(session_id, 0, events)
        execute(url, "delete from events where session_id = :s and seq = 30", s=session_id)
        report = recorder.verify_chain(session_id)
        assert (report.ok, report.first_bad_seq) == (False, 30)
        last = len(events) - 1
        execute(url, "delete from events where session_id = :s and seq >= 30", s=session_id)
        report = recorder.verify_chain(session_id)
        assert (report.ok, report.first_bad_seq) == (False, 30)
        assert f"records {last + 1} events but 30 are stored" in report.message

    # -- the writer -----------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_writer_events_are_durable_after_flush(self, recorder: EventRecorder) -> None:
        events, session_id = a_session(3), new_id()
        writer = EventWriter(recorder, max_delay_ms=20, max_batch=16)
        async with anyio.create_task_group() as group:
            group.start_soon(writer.run)
            for start in range(0, len(events), 3):
                writer.submit(session_id, events[start : start + 3])
                await anyio.lowlevel.checkpoint()
            await writer.flush(session_id)
            assert await anyio.to_thread.run_sync(recorder.events, session_id) == events
            assert writer.pending_events == 0
            group.cancel_scope.cancel()

    @pytest.mark.anyio
    async def test_writer_stores_what_remains_when_cancelled(self, recorder: EventRecorder) -> None:
        sessions = {new_id(): a_session(2, capture_id=lane) for lane in range(1, 4)}
        writer = EventWriter(recorder, max_delay_ms=10_000)
        async with anyio.create_task_group() as group:
            group.start_soon(writer.run)
            for session_id, events in sessions.items():
                writer.submit(session_id, events)
            group.cancel_scope.cancel()
        for session_id, events in sessions.items():
            assert recorder.events(session_id) == events

    @pytest.mark.anyio
    async def test_writer_flush_raises_when_the_store_refuses(
        self, recorder: EventRecorder
    ) -> None:
        session_id = new_id()
        recorder.append(session_id, 0, a_session(1, capture_id=1)[:3])
        writer = EventWriter(recorder, max_delay_ms=10)
        async with anyio.create_task_group() as group:
            group.start_soon(writer.run)
            writer.submit(session_id, a_session(1, capture_id=9)[:3])  # same seqs, other lane
            with pytest.raises(StoreError, match="were not stored"):
                await writer.flush(session_id)
            assert writer.pending_events == 3  # kept, not dropped
            group.cancel_scope.cancel()

    # -- the command line -----------------------------------------------------------------------

    def test_cli_db_upgrade(self, empty_url: str) -> None:
        result = CliRunner().invoke(cli, ["db", "upgrade", "--database-url", empty_url])
        assert result.exit_code == 0, result.output
        assert f"upgraded from empty to {migrate.head()}" in result.output
        result = CliRunner().invoke(cli, ["db", "current", "--database-url", empty_url])
        assert result.exit_code == 0 and "up to date" in result.output

    def test_cli_sessions_json(self, recorder: EventRecorder, url: str) -> None:
        first, second = new_id(), new_id()
        recorder.append(first, 0, a_session(2, capture_id=1))
        recorder.append(second, 0, a_session(2, capture_id=2, stop_at=30))
        result = CliRunner().invoke(cli, ["sessions", "--json", "--database-url", url])
        assert result.exit_code == 0, result.output
        rows = json.loads(result.output)
        assert [row["session_id"] for row in rows] == [second, first]
        assert rows[0]["end_status"] == -1 and rows[1]["end_status"] == -2
        args = ["sessions", "--json", "--status", "-1", "--capture", "2", "--database-url", url]
        result = CliRunner().invoke(cli, args)
        assert [row["session_id"] for row in json.loads(result.output)] == [second]
        result = CliRunner().invoke(cli, ["sessions", "--database-url", url])
        assert result.exit_code == 0 and second in result.output

    @pytest.mark.usefixtures("reference_registered")
    def test_cli_replay_identical(self, recorder: EventRecorder, url: str) -> None:
        events, session_id = a_session(4), new_id()
        recorder.append(session_id, 0, events)
        result = CliRunner().invoke(cli, ["replay", session_id, "--database-url", url])
        assert result.exit_code == 0, result.output
        assert "identical" in result.output
        result = CliRunner().invoke(cli, ["replay", session_id, "--json", "--database-url", url])
        report = json.loads(result.output)
        assert report["identical"] and report["recorded"] == report["replayed"]
        assert report["recorded"]["status"] == [[0], [TOO_FAST], [0], [TOO_FAST]]

    @pytest.mark.usefixtures("reference_registered")
    def test_cli_replay_reports_the_first_divergence(
        self, recorder: EventRecorder, url: str
    ) -> None:
        events, session_id = a_session(4), new_id()
        seq = next(i for i, e in enumerate(events) if isinstance(e, RepCounted) and e.rep == 2)
        rep = events[seq]
        assert isinstance(rep, RepCounted)
        altered = [*events]
        altered[seq] = dataclasses.replace(rep, status=(0,), count=rep.count + 1)
        recorder.append(session_id, 0, altered)
        result = CliRunner().invoke(cli, ["replay", session_id, "--database-url", url])
        assert result.exit_code == 1, result.output
        assert f"event {seq} diverges" in result.output
        assert "expected (recorded): RepCounted(rep=2, status=(0,)" in result.output
        assert f"got (replayed):      RepCounted(rep=2, status=({TOO_FAST},)" in result.output
        assert "status codes  0 0 0 391" in result.output or "0 0 0 391" in result.output
        assert "<- differs" in result.output
        result = CliRunner().invoke(cli, ["replay", session_id, "--json", "--database-url", url])
        report = json.loads(result.output)
        assert report["divergence"]["seq"] == seq and not report["identical"]
        assert report["recorded"]["status"][1] == [0]
        assert report["replayed"]["status"][1] == [TOO_FAST]

    @pytest.mark.usefixtures("reference_registered")
    def test_cli_replay_refuses_changed_rules_unless_rescoring(
        self, recorder: EventRecorder, url: str
    ) -> None:
        old_rules = dataclasses.replace(REFERENCE, rules_version="reference-0")
        session_id = new_id()
        recorder.append(session_id, 0, a_session(2, exercise=old_rules))
        result = CliRunner().invoke(cli, ["replay", session_id, "--database-url", url])
        assert result.exit_code == 2
        assert "reference-0" in result.output and "--rescore" in result.output
        args = ["replay", session_id, "--rescore", "--database-url", url]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "re-scored under installed rules reference-1" in result.output

    def test_cli_replay_unknown_session(self, recorder: EventRecorder, url: str) -> None:
        result = CliRunner().invoke(cli, ["replay", "nobody", "--database-url", url])
        assert result.exit_code == 2 and "no session nobody" in result.output

    @pytest.mark.usefixtures("reference_registered")
    def test_cli_verify_intact(self, recorder: EventRecorder, url: str) -> None:
        session_id = new_id()
        recorder.append(session_id, 0, a_session(3))
        result = CliRunner().invoke(cli, ["verify", session_id, "--database-url", url])
        assert result.exit_code == 0, result.output
        assert "hash chain: ok" in result.output and "replay: identical" in result.output

    @pytest.mark.usefixtures("reference_registered")
    def test_cli_verify_names_a_tampered_row(self, recorder: EventRecorder, url: str) -> None:
        events, session_id = a_session(3), new_id()
        recorder.append(session_id, 0, events)
        seq = _tamper_blob(url, session_id, events)
        result = CliRunner().invoke(cli, ["verify", session_id, "--database-url", url])
        assert result.exit_code == 1, result.output
        assert f"hash chain: BROKEN at event {seq}" in result.output
        assert f"event {seq} (FrameObserved) was altered" in result.output
        args = ["verify", session_id, "--json", "--database-url", url]
        document = json.loads(CliRunner().invoke(cli, args).output)
        assert document["chain"]["first_bad_seq"] == seq

    # -- helpers --------------------------------------------------------------------------------

    def _stored_with_rep(self, recorder: EventRecorder) -> tuple[str, int]:
        events, session_id = a_session(), new_id()
        recorder.append(session_id, 0, events)
        seq = next(i for i, e in enumerate(events) if isinstance(e, RepCounted) and e.count == 1)
        return session_id, seq


def _tamper_blob(url: str, session_id: str, events: list[Event]) -> int:
    """Nudge one keypoint of a stored frame by a pixel; returns the row's seq."""
    seq = next(i for i, e in enumerate(events) if isinstance(e, FrameObserved) and e.keypoints)
    seq += 20  # somewhere inside the session, not its first frame
    while not _has_person(events[seq]):
        seq += 1
    blob = bytearray(
        scalar(url, "select blob from events where session_id=:s and seq=:q", s=session_id, q=seq)
    )
    blob[5] ^= 0x01
    touched = execute(
        url,
        "update events set blob = :b where session_id = :s and seq = :q",
        b=bytes(blob),
        s=session_id,
        q=seq,
    )
    assert touched == 1
    return seq


def _has_person(event: Event) -> bool:
    return isinstance(event, FrameObserved) and event.keypoints is not None


def _engine(url: str) -> sqlalchemy.Engine:
    from khfsm.store.engine import create_store_engine

    return create_store_engine(url)
