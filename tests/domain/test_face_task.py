"""The face check is a task like an exercise: registered, with its own codes, replayable."""

from __future__ import annotations

from dataclasses import replace

import pytest

from khfsm.domain.errors import DomainError
from khfsm.domain.events import (
    Event,
    FaceChecked,
    FrameObserved,
    SessionEnded,
    SessionPrepared,
    SessionStarted,
    StopRequested,
)
from khfsm.domain.face import FACE_CHECK, FaceOutcome, outcome_of
from khfsm.domain.fold import fold
from khfsm.domain.replay import replay
from khfsm.domain.run import run_session
from khfsm.domain.session import Session
from khfsm.domain.task import Task
from khfsm.registry import UnknownTask, get_exercise, get_task, installed_exercises
from tests.domain.golden import GOLDEN_DIR, read_jsonl
from tests.domain.reference_exercise import EXERCISE


def test_the_face_check_is_registered_as_a_task_not_an_exercise() -> None:
    assert get_task("FaceDetection") is FACE_CHECK
    assert isinstance(FACE_CHECK, Task)
    assert "FaceDetection" not in installed_exercises()
    with pytest.raises(UnknownTask, match="FaceDetection is not an exercise"):
        get_exercise("FaceDetection")


def test_every_installed_task_declares_distinct_codes() -> None:
    tasks = [get_task(name) for name in ("FaceDetection", *sorted(installed_exercises()))]
    push_codes = {task.task: task.push_code for task in tasks}
    assert push_codes["FaceDetection"] == 1111 and push_codes["pushup"] == 2222
    assert len(set(push_codes.values())) == len(push_codes)
    digits = [task.code_digit for task in tasks if task.code_digit is not None]
    assert len(set(digits)) == len(digits) and FACE_CHECK.code_digit is None
    assert get_exercise("armhang").code_digit == 6


def test_its_outcome_codes_and_messages() -> None:
    assert FACE_CHECK.faults == {1: "mismatch", 2: "no usable face"}
    outcomes = {
        name: outcome_of(_checked(read_jsonl(GOLDEN_DIR / f"face_{name}.jsonl")))
        for name in ("match", "mismatch", "no_face")
    }
    assert outcomes == {
        "match": FaceOutcome.MATCH,
        "mismatch": FaceOutcome.MISMATCH,
        "no_face": FaceOutcome.NO_FACE,
    }


def test_a_check_ends_the_session_normally_with_its_message() -> None:
    events = read_jsonl(GOLDEN_DIR / "face_mismatch.jsonl")
    checked = _checked(events)
    end = events[-1]
    assert isinstance(end, SessionEnded)
    assert (end.status, end.message) == (-2, checked.message)
    summary = fold(events)
    assert summary.face == checked
    assert summary.outcome == "mismatch (similarity 0.204, threshold 0.55)"


def test_a_face_session_assesses_no_frames_and_an_exercise_checks_no_face() -> None:
    prepared = read_jsonl(GOLDEN_DIR / "face_match.jsonl")[0]
    assert isinstance(prepared, SessionPrepared)
    face = Session(FACE_CHECK, who="capture 3")
    face.prepare(prepared)
    face.start(SessionStarted())
    with pytest.raises(DomainError, match="FaceDetection test; it assesses no frames"):
        face.observe(FrameObserved.of(0, None))
    exercise = Session(EXERCISE, who="capture 2")
    with pytest.raises(DomainError, match="not a face check"):
        exercise.check_face(_checked(read_jsonl(GOLDEN_DIR / "face_match.jsonl")))


def test_a_check_before_start_is_refused_and_a_stop_ends_it() -> None:
    events = read_jsonl(GOLDEN_DIR / "face_match.jsonl")
    prepared = events[0]
    assert isinstance(prepared, SessionPrepared)
    session = Session(FACE_CHECK)
    session.prepare(prepared)
    with pytest.raises(DomainError, match="prepared; no face is checked"):
        session.check_face(_checked(events))
    stopped = run_session(FACE_CHECK, [prepared, SessionStarted(), StopRequested(frame=0)])
    assert fold(stopped).end_status == -1 and fold(stopped).outcome == "-1 stopped by the operator"


def test_replay_rederives_a_face_checks_end() -> None:
    events = read_jsonl(GOLDEN_DIR / "face_match.jsonl")
    assert replay(events, FACE_CHECK).identical
    # An end edited after the fact (a mismatch recorded as a pass) is a divergence.
    end = events[-1]
    assert isinstance(end, SessionEnded)
    tampered = [*events[:-1], replace(end, message="the face matches (edited)")]
    report = replay(tampered, FACE_CHECK)
    assert not report.identical and report.divergence is not None
    assert report.divergence.index == len(events) - 1


def _checked(events: list[Event]) -> FaceChecked:
    (checked,) = (e for e in events if isinstance(e, FaceChecked))
    return checked
