"""The one session driver: inputs in, the session's event stream out."""

from __future__ import annotations

from dataclasses import dataclass

from khfsm.domain.events import Event, FrameObserved, SessionEnded, StopRequested
from khfsm.domain.fold import fold
from khfsm.domain.run import judge_poses, run_session
from tests.domain.golden import GOLDEN_DIR, prepared, read_jsonl
from tests.domain.reference_exercise import (
    ABSENT_FRAMES,
    EXERCISE,
    pose_with_wrist_height,
    wrist_heights,
)


def test_a_recorded_stream_drives_to_itself() -> None:
    # Derived events given back as inputs are ignored: the rules derive them again.
    events = read_jsonl(GOLDEN_DIR / "reference_violated.jsonl")
    assert run_session(EXERCISE, events) == events


def test_poses_after_the_end_are_not_part_of_the_session() -> None:
    poses = [None] * (ABSENT_FRAMES + 20)  # nobody: unallowed motion after ABSENT_FRAMES
    events = judge_poses(EXERCISE, prepared(200), poses)
    frames = [e.frame for e in events if isinstance(e, FrameObserved)]
    assert frames == list(range(ABSENT_FRAMES))
    assert fold(events).end_status == -3
    assert not any(isinstance(e, StopRequested) for e in events)


def test_fewer_poses_than_frames_end_with_a_stop_after_the_last() -> None:
    poses = [pose_with_wrist_height(h) for h in wrist_heights([80.0, 70.0])]
    events = judge_poses(EXERCISE, prepared(200), poses)
    stop = events[-2]
    assert isinstance(stop, StopRequested) and stop.frame == len(poses)
    end = events[-1]
    assert isinstance(end, SessionEnded) and (end.status, end.count) == (-1, 2)
    timed = judge_poses(EXERCISE, prepared(len(poses)), poses)
    assert fold(timed).end_status == -2 and fold(timed).count == 2


@dataclass(frozen=True, slots=True)
class OperatorNote(Event):
    """An input no command reads (as a site might record beside the frames)."""

    text: str


def test_an_input_no_command_reads_is_kept_in_place() -> None:
    note = OperatorNote("camera moved")
    events = run_session(EXERCISE, [prepared(200), note, StopRequested(frame=0)])
    assert events[1] == note and fold(events).end_status == -1
