"""Behaviour that mutation testing (benchmarks/mutation.py) showed no test checked: the fold's
every field, the stored format (canonical JSON, the hash chain), the codec's errors, sessions
that end by a source failure or without rules, and replay of the evidence fields."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from khfsm.domain.codec import CodecError, EventRecord, canonical_json, chain_hash, decode, encode
from khfsm.domain.codes import EndStatus, fault_code, is_fault
from khfsm.domain.errors import DomainError
from khfsm.domain.events import (
    Event,
    FaceChecked,
    FrameObserved,
    SessionEnded,
    SessionPrepared,
    SessionStarted,
    SourceFailed,
    StopRequested,
)
from khfsm.domain.face import FACE_CHECK
from khfsm.domain.fold import fold
from khfsm.domain.machine import State
from khfsm.domain.replay import ReplayError, rederive, replay
from khfsm.domain.session import Session
from tests.domain.golden import golden_history, prepared
from tests.domain.reference_exercise import EXERCISE, pose_with_wrist_height

# -- the fold ---------------------------------------------------------------------------------


def test_fold_follows_every_event_of_a_stopped_session() -> None:
    events = golden_history()
    summary = fold(events)
    frames = [e for e in events if isinstance(e, FrameObserved)]
    stop = next(e for e in events if isinstance(e, StopRequested))
    assert summary.events == len(events)
    assert summary.prepared is events[0] and summary.started
    assert summary.frames == frames[-1].frame + 1 == len(frames)
    assert summary.persons == sum(e.keypoints is not None for e in frames)
    assert summary.stop_frame == stop.frame
    assert summary.state is State.STOPPED and summary.end is events[-1] and summary.ended
    assert summary.face is None and summary.violation is None


def test_fold_of_each_prefix_is_where_the_session_was() -> None:
    events = golden_history()
    assert fold(events[:1]).state is State.PREPARED
    assert fold(events[:1]).prepared is events[0] and not fold(events[:1]).started
    assert fold(events[:2]).state is State.RUNNING and fold(events[:2]).started
    for length in range(len(events) + 1):
        assert fold(events[:length]).events == length


def test_fold_of_a_face_session_keeps_its_check() -> None:
    events = face_session()
    summary = fold(events)
    assert summary.face == events[2] and summary.end == events[3]
    assert summary.state is State.STOPPED and summary.events == 4


# -- the stored format ------------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_unicode_and_finite() -> None:
    assert canonical_json({"b": 1, "a": [1.5, "é"]}) == '{"a":[1.5,"é"],"b":1}'
    for not_finite in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            canonical_json({"x": not_finite})


def test_encoded_payload_is_canonical_json_of_the_fields() -> None:
    record = encode(SourceFailed(frame=3, status=-4, message="caméra perdue"))
    assert record.payload == '{"frame":3,"message":"caméra perdue","status":-4}'
    assert record.blob is None


def test_chain_hash_is_the_documented_digest() -> None:
    """sha256 over previous, session, seq, type, version, payload, each followed by 0x1f,
    then the blob: pinned, since every stored chain was computed this way."""
    record = EventRecord("StopRequested", 1, '{"frame":9}', None)
    parts = ["0" * 64, "s1", "9", "StopRequested", "1", '{"frame":9}']
    expected = hashlib.sha256(b"".join(p.encode() + b"\x1f" for p in parts)).hexdigest()
    assert chain_hash("0" * 64, "s1", 9, record) == expected
    with_blob = EventRecord("StopRequested", 1, '{"frame":9}', b"\x01\x02")
    assert (
        chain_hash("0" * 64, "s1", 9, with_blob)
        == hashlib.sha256(b"".join(p.encode() + b"\x1f" for p in parts) + b"\x01\x02").hexdigest()
    )
    assert chain_hash("0" * 64, "s1", 9, replace(record, version=2)) != expected


def test_frame_without_world_landmarks_round_trips() -> None:
    pose = pose_with_wrist_height(40.0)
    frame = replace(FrameObserved.of(2, pose), world=None)
    record = encode(frame)
    assert record.blob == frame.keypoints
    assert decode(record) == frame


def test_mapping_fields_are_stored_as_objects() -> None:
    event = prepared()
    payload = json.loads(encode(event).payload)
    assert payload["models"] == dict(event.models)
    assert decode(encode(event)) == event


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (EventRecord("Nonsense", 1, "{}", None), "unknown event type 'Nonsense'"),
        (EventRecord("StopRequested", 99, '{"frame":1}', None), "schema version 99 is newer"),
        (EventRecord("StopRequested", 1, "{frame", None), "StopRequested payload is not JSON"),
        (EventRecord("StopRequested", 1, "{}", None), "StopRequested record does not fit"),
    ],
)
def test_decode_errors_say_what_is_wrong(record: EventRecord, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        decode(record)


def test_decode_skips_fields_a_later_schema_dropped_and_keeps_the_rest() -> None:
    payload = '{"dropped_field":1,"frame":7}'  # sorted: the dropped field comes first
    assert decode(EventRecord("StopRequested", 1, payload, None)) == StopRequested(frame=7)


def test_encode_refuses_an_event_type_it_does_not_know() -> None:
    class Stranger(StopRequested):
        pass

    with pytest.raises(CodecError, match="unknown event type Stranger"):
        encode(Stranger(frame=1))


# -- codes ------------------------------------------------------------------------------------


def test_fault_codes_are_3xy_and_out_of_range_is_refused() -> None:
    assert fault_code(1, 1) == 311 and fault_code(6, 9) == 369 and fault_code(9, 1) == 391
    for digit, fault in ((0, 1), (10, 1), (1, 0), (1, 10)):
        with pytest.raises(ValueError, match="fault code out of range"):
            fault_code(digit, fault)
    assert is_fault(300) and is_fault(399) and not is_fault(299) and not is_fault(400)
    assert not is_fault(0) and not is_fault(-1)


# -- sessions ending without a frame, by a failure, without rules -----------------------------


def test_source_failure_before_the_start_ends_the_prepared_session() -> None:
    session = Session(EXERCISE, who="capture 2")
    session.prepare(prepared())
    failed = SourceFailed(frame=0, status=-4, message="camera never answered")
    events = session.fail(failed)
    assert events == [failed, SessionEnded(-4, "camera never answered", 0, 0, 0)]
    assert session.machine.ended
    assert session.fail(failed) == []  # once ended, nothing more


def test_stop_before_the_start_ends_the_prepared_session() -> None:
    session = Session(EXERCISE, who="capture 2")
    session.prepare(prepared())
    events = session.request_stop(StopRequested(frame=0))
    assert events == [StopRequested(frame=0), SessionEnded(-1, "stopped by the operator", 0, 0, 0)]
    assert session.machine.ended


def test_source_failure_mid_rep_judges_the_rep_and_replays_identically() -> None:
    session = Session(EXERCISE, who="capture 2")
    events: list[Event] = [*session.prepare(prepared()), *session.start(SessionStarted())]
    heights = [0.0] * 5 + [80.0] * 4 + [0.0] * 5 + [80.0] * 3  # the second rep is cut short
    for k, height in enumerate(heights):
        events += session.observe(FrameObserved.of(k, pose_with_wrist_height(height)))
    events += session.fail(SourceFailed(frame=len(heights), status=-4, message="camera lost"))
    summary = fold(events)
    assert summary.total == 2  # the rep in progress was judged at the failure
    assert summary.end == SessionEnded(-4, "camera lost", len(heights), 2, 2)
    assert replay(events, EXERCISE).identical
    for changed in (replace(summary.end, status=-5), replace(summary.end, message="x")):
        assert not replay([*events[:-1], changed], EXERCISE).identical


CHECKED = FaceChecked(
    similarity=0.8, accepted=True, threshold=0.5, filename="f/a.jpg", message="the face matches"
)


def test_a_face_check_ends_normally_with_its_outcome_message() -> None:
    session = face_check_session(started=True)
    events = session.check_face(CHECKED)
    assert events == [CHECKED, SessionEnded(int(EndStatus.TIME_UP), "the face matches", 0, 0, 0)]
    assert session.machine.ended


@pytest.mark.parametrize("status", [EndStatus.STOPPED, EndStatus.SOURCE_LOST])
def test_a_face_check_can_be_stopped_or_fail_before_its_start(status: EndStatus) -> None:
    session = face_check_session(started=False)
    if status is EndStatus.STOPPED:
        events = session.request_stop(StopRequested(frame=0))
    else:
        events = session.fail(SourceFailed(frame=0, status=int(status), message="camera lost"))
    ended = events[-1]
    assert isinstance(ended, SessionEnded) and ended.status == int(status)
    assert session.machine.ended


def test_a_face_is_not_checked_before_the_start() -> None:
    with pytest.raises(DomainError):
        face_check_session(started=False).check_face(CHECKED)


def face_prepared() -> SessionPrepared:
    return replace(prepared(), task=FACE_CHECK.task, rules_version=FACE_CHECK.rules_version)


def face_check_session(*, started: bool) -> Session:
    session = Session(FACE_CHECK, who="face 10")
    session.prepare(face_prepared())
    if started:
        session.start(SessionStarted())
    return session


def face_session() -> list[Event]:
    session = Session(FACE_CHECK, who="face 10")
    events: list[Event] = [
        *session.prepare(face_prepared()),
        *session.start(SessionStarted()),
        *session.check_face(CHECKED),
    ]
    ended = events[-1]
    assert isinstance(ended, SessionEnded)
    events[-1] = ended.sealed("cd" * 32, 2048)
    return events


def test_face_session_replays_identically_with_its_evidence() -> None:
    events = face_session()
    report = replay(events, FACE_CHECK)
    assert report.identical, report.divergence and report.divergence.describe()
    assert report.replayed.face == events[2]
    assert report.replayed.end == events[-1]


# -- replay of the evidence and of malformed streams ------------------------------------------


def test_replay_carries_the_recorded_evidence_over() -> None:
    events = golden_history()
    ended = events[-1]
    assert isinstance(ended, SessionEnded)
    sealed = [*events[:-1], ended.sealed("ab" * 32, 4096)]
    report = replay(sealed, EXERCISE)
    assert report.identical
    assert report.replayed.end is not None
    assert (report.replayed.end.video_sha256, report.replayed.end.video_bytes) == (
        "ab" * 32,
        4096,
    )
    assert ended.sealed("ab" * 32, 4096).without_evidence() == ended


@pytest.mark.parametrize("stream", [[], [SessionStarted()]])
def test_stream_not_beginning_with_prepare_is_refused(stream: list[Event]) -> None:
    with pytest.raises(ReplayError, match="must begin with SessionPrepared"):
        rederive(stream, EXERCISE)
    with pytest.raises(ReplayError, match="must begin with SessionPrepared"):
        replay(stream, EXERCISE)


def test_rederive_names_the_capture_in_its_errors() -> None:
    events = golden_history()
    started_twice = [events[0], events[1], events[1], *events[2:]]
    assert isinstance(events[0], SessionPrepared) and isinstance(events[1], SessionStarted)
    with pytest.raises(DomainError, match=f"capture {events[0].capture_id} is already running"):
        rederive(started_twice, EXERCISE)
