"""Running a session from its inputs: the one driver of the `Session` aggregate offline.

Replay feeds a stored stream's recorded inputs through it, offline assessment (`khfsm assess`)
and the tests feed poses through it; the live pipeline issues the same commands one by one as
its inputs arrive. Inputs are what the outside world observed or asked (`SessionPrepared`,
`SessionStarted`, `FrameObserved`, `StopRequested`, `SourceFailed`, `FaceChecked`); the events
the rules derive (`RepCounted`, `MotionViolated`, `SessionEnded`) are never inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from khfsm.domain.events import (
    Event,
    FaceChecked,
    FrameObserved,
    SessionPrepared,
    SessionStarted,
    SourceFailed,
    StopRequested,
)
from khfsm.domain.pose import Pose
from khfsm.domain.session import Session
from khfsm.domain.task import Task


def take(session: Session, event: Event) -> list[Event]:
    """Apply one input to `session`; the events to append (the input and what it derives).

    A frame after the session has ended is not part of it (the live pipeline never records
    one), so it appends nothing; a derived event is the rules' to produce, not an input; an
    input no command reads (a note the outside world recorded) is kept as it is.
    """
    match event:
        case SessionPrepared():
            return session.prepare(event)
        case SessionStarted():
            return session.start(event)
        case FrameObserved():
            return [] if session.ended else session.observe(event)
        case StopRequested():
            return session.request_stop(event)
        case SourceFailed():
            return session.fail(event)
        case FaceChecked():
            return session.check_face(event)
    return [] if event.DERIVED else [event]


def run_session(task: Task, inputs: Iterable[Event], *, who: str = "the session") -> list[Event]:
    """The event stream of a fresh session of `task` driven by `inputs`."""
    return Drive(task, who).feed(inputs).events


class Drive:
    """A session being driven, and every event it has appended so far."""

    def __init__(self, task: Task, who: str = "the session") -> None:
        self.session = Session(task, who=who)
        self.events: list[Event] = []

    def feed(self, inputs: Iterable[Event]) -> Drive:
        for event in inputs:
            self.events += take(self.session, event)
        return self


def observations(poses: Iterable[Pose | None], first: int = 0) -> Iterator[FrameObserved]:
    """The `FrameObserved` input of each pose, numbered from `first`."""
    for offset, pose in enumerate(poses):
        yield FrameObserved.of(first + offset, pose)


def judge_poses(
    task: Task,
    prepared: SessionPrepared,
    poses: Iterable[Pose | None],
    *,
    started: SessionStarted | None = None,
    before: Mapping[int, Sequence[Event]] | None = None,
    who: str = "the session",
) -> list[Event]:
    """A whole session over one pose per assessed frame; its event stream.

    It ends by time-up after `prepared.frames` frames, earlier when the rules stop it, or by
    a stop requested after the last pose when there are fewer poses than that. `before` holds
    inputs recorded just before a frame's observation (e.g. who the keypoints are of).
    """
    drive = Drive(task, who).feed([prepared, started or SessionStarted()])
    frames = 0
    for observed in observations(poses):
        if drive.session.ended:
            break  # the rest of the video is not part of the session
        drive.feed([*(before or {}).get(observed.frame, ()), observed])
        frames += 1
    return drive.feed([StopRequested(frame=frames)]).events
