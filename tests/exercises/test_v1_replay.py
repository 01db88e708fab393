"""Released `*-1` rules stay installed and replay exactly after the `*-2` upgrade."""

from __future__ import annotations

import json

import pytest

from khfsm.domain.events import Event, FrameObserved, SessionPrepared, SessionStarted, StopRequested
from khfsm.domain.replay import ReplayError, replay
from khfsm.domain.session import Session
from khfsm.registry import get_exercise
from tests.exercises.v1_golden import GOLDEN, sessions, verdicts


def test_v1_rules_still_give_their_golden_verdicts() -> None:
    assert verdicts() == json.loads(GOLDEN.read_text())


def _record(name: str) -> list[Event]:
    exercise, clip = sessions()[name]
    session = Session(exercise)
    events = session.prepare(
        SessionPrepared(
            task=exercise.task,
            capture_id=1,
            level=5,
            fps=clip.fps,
            frames=len(clip) + 1,
            source="synthetic",
            video_path="",
            engine_version="test",
            rules_version=exercise.rules_version,
            frame_width=clip.width,
            frame_height=clip.height,
        )
    )
    events += session.start(SessionStarted())
    for k, pose in enumerate(clip.poses):
        events += session.observe(FrameObserved.of(k, pose))
    events += session.request_stop(StopRequested(frame=len(clip)))
    return events


@pytest.mark.parametrize(("name", "task"), [("pushup-1", "pushup"), ("situp-1", "situp")])
def test_v1_session_replays_identically_under_its_stored_version(name: str, task: str) -> None:
    events = _record(name)
    prepared = events[0]
    assert isinstance(prepared, SessionPrepared) and prepared.rules_version == f"{task}-1"
    newest = get_exercise(task)
    assert newest.rules_version == f"{task}-2"  # the upgrade is installed ...
    stored = get_exercise(task, prepared.rules_version)  # ... and -1 is still selectable
    report = replay(events, stored)
    assert report.identical, report.divergence and report.divergence.describe()
    assert report.replayed.reps == report.recorded.reps
    with pytest.raises(ReplayError, match=f"judged under {task} rules {task}-1"):
        replay(events, newest)
    rescored = replay(events, newest, rescore=True)
    assert rescored.replayed.total >= 1
