from __future__ import annotations

import math

import pytest

from khfsm.domain.codec import CodecError, chain_hash, decode, encode
from khfsm.domain.codes import EndStatus
from khfsm.domain.errors import DomainError, IllegalTransition
from khfsm.domain.events import (
    EVENT_TYPES,
    ExamineeChanged,
    ExamineeLost,
    FaceChecked,
    FrameObserved,
    MotionViolated,
    ReadinessReported,
    RepCounted,
    ReviewDecided,
    SessionEnded,
    SessionStarted,
    SourceFailed,
    StopRequested,
)
from khfsm.domain.fold import fold
from khfsm.domain.machine import State
from khfsm.domain.session import Session
from tests.domain.golden import build_session, prepared
from tests.domain.reference_exercise import (
    ABSENT_FRAMES,
    EXERCISE,
    pose_with_wrist_height,
)


def running(frames: int = 200) -> Session:
    session = Session(EXERCISE, who="capture 2")
    session.prepare(prepared(frames))
    session.start(SessionStarted())
    return session


def test_counts_and_faults_fold_from_the_events() -> None:
    events = build_session([80.0, 30.0, 90.0])
    summary = fold(events)
    assert (summary.count, summary.total) == (2, 3)
    assert [rep.status for rep in summary.reps] == [(0,), (391,), (0,)]
    assert summary.state is State.STOPPED and summary.end_status == EndStatus.STOPPED
    assert summary.reps[0].measurements == {"peak_px": pytest.approx(80, abs=1), "high_px": 60.0}


def test_time_up_after_exactly_the_prepared_number_of_frames() -> None:
    session = running(frames=12)
    events = []
    for index in range(12):
        events += session.observe(FrameObserved.of(index, pose_with_wrist_height(0.0)))
    ended = events[-1]
    assert isinstance(ended, SessionEnded)
    assert (ended.status, ended.frames) == (EndStatus.TIME_UP, 12)
    with pytest.raises(DomainError):
        session.observe(FrameObserved.of(12, None))


def test_stop_is_idempotent_and_judges_the_rep_in_progress() -> None:
    session = running()
    for index, height in enumerate([0.0, 70.0, 75.0]):
        session.observe(FrameObserved.of(index, pose_with_wrist_height(height)))
    first = session.request_stop(StopRequested(frame=3))
    assert [type(e) for e in first] == [StopRequested, RepCounted, SessionEnded]
    assert session.request_stop(StopRequested(frame=3)) == []
    assert session.state is State.STOPPED


def test_unallowed_motion_ends_with_minus_three_and_nothing_counts_after() -> None:
    session = running()
    events = []
    for index in range(ABSENT_FRAMES):
        events += session.observe(FrameObserved.of(index, None))
    assert isinstance(events[-2], MotionViolated)
    assert isinstance(events[-1], SessionEnded)
    assert events[-1].status == EndStatus.UNALLOWED_MOTION
    assert session.state is State.VIOLATED
    assert session.request_stop(StopRequested(frame=ABSENT_FRAMES)) == []


def test_source_failure_ends_with_its_status() -> None:
    session = running()
    session.observe(FrameObserved.of(0, None))
    events = session.fail(SourceFailed(frame=1, status=-4, message="camera stopped"))
    assert isinstance(events[-1], SessionEnded) and events[-1].status == -4
    assert events[-1].message == "camera stopped"


def test_frames_out_of_order_are_refused() -> None:
    session = running()
    with pytest.raises(DomainError, match="out of order"):
        session.observe(FrameObserved.of(5, None))


def test_start_before_prepare_changes_nothing() -> None:
    session = Session(EXERCISE, who="capture 7")
    with pytest.raises(IllegalTransition, match="capture 7 is not prepared"):
        session.start(SessionStarted())
    assert session.state is State.IDLE


def test_every_event_type_round_trips_through_the_codec() -> None:
    pose = pose_with_wrist_height(50.0)
    samples = [
        prepared(),
        SessionStarted(started_at="2026-11-21T08:00:00+00:00"),
        FrameObserved.of(3, pose),
        FrameObserved.of(4, None),
        RepCounted(1, (311, 313), 3, 9, (0.2, 0.5), 0, 1, {"elbow_min_deg": 101.5}),
        StopRequested(frame=9),
        SourceFailed(frame=9, status=-4, message="camera lost"),
        MotionViolated(frame=9, code="stood_up", message="stood up"),
        FaceChecked(similarity=0.8, accepted=True, threshold=0.5, filename="faces/a.jpg"),
        SessionEnded(-2, "time is up", 10, 0, 1, "ab" * 32, 1234),
        ExamineeChanged(frame=6, reason="switched", x=0.62, y=0.74, candidates=2),
        ExamineeLost(frame=30, x=0.6, y=0.75, candidates=1),
        ReadinessReported("prepare", True, ("ankles",), False, ("ankles not in view",), "side"),
        ReviewDecided("judge", "2026-12-01T10:00:00+00:00", 2, "overturn", "too shallow"),
        ReviewDecided("judge", "2026-12-01T10:01:00+00:00", None, "uphold", "time was up"),
    ]
    assert {type(s).__name__ for s in samples} == set(EVENT_TYPES)
    for event in samples:
        assert decode(encode(event)) == event
    frame = decode(encode(samples[2]))
    assert isinstance(frame, FrameObserved) and frame.pose() is not None
    assert (frame.pose().landmarks == pose.landmarks).all()  # type: ignore[union-attr]


def test_codec_refuses_values_json_cannot_hold_exactly() -> None:
    with pytest.raises(CodecError, match="RepCounted"):
        encode(RepCounted(1, (0,), 0, 1, (0.0, 0.1), 1, 1, {"angle": math.nan}))


def test_chain_hash_covers_session_seq_payload_and_blob() -> None:
    record = encode(FrameObserved.of(3, pose_with_wrist_height(50.0)))
    base = chain_hash("0" * 64, "s1", 3, record)
    assert chain_hash("0" * 64, "s2", 3, record) != base
    assert chain_hash("0" * 64, "s1", 4, record) != base
    assert chain_hash("1" * 64, "s1", 3, record) != base
    assert record.blob is not None
    flipped = bytes([record.blob[0] ^ 0xFF]) + record.blob[1:]
    tampered = type(record)(record.type, record.version, record.payload, flipped)
    assert chain_hash("0" * 64, "s1", 3, tampered) != base


def test_time_up_judges_the_rep_in_progress_like_a_stop() -> None:
    session = running(frames=4)
    events = []
    for index, height in enumerate([0.0, 70.0, 75.0, 80.0]):
        events += session.observe(FrameObserved.of(index, pose_with_wrist_height(height)))
    assert [type(e) for e in events[-3:]] == [FrameObserved, RepCounted, SessionEnded]
    rep, ended = events[-2], events[-1]
    assert isinstance(rep, RepCounted) and isinstance(ended, SessionEnded)
    assert (rep.start_frame, rep.end_frame, rep.status) == (1, 4, (0,))
    assert (ended.status, ended.count, ended.total) == (EndStatus.TIME_UP, 1, 1)
