"""A session's state, counts and outcome as a pure fold over its events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from khfsm.domain.events import (
    Event,
    FaceChecked,
    FrameObserved,
    MotionViolated,
    RepCounted,
    SessionEnded,
    SessionPrepared,
    SessionStarted,
    StopRequested,
)
from khfsm.domain.machine import State


@dataclass(frozen=True, slots=True)
class SessionSummary:
    state: State = State.IDLE
    prepared: SessionPrepared | None = None
    started: bool = False
    frames: int = 0
    persons: int = 0  # frames in which somebody was found
    count: int = 0
    total: int = 0
    reps: tuple[RepCounted, ...] = ()
    violation: MotionViolated | None = None
    stop_frame: int | None = None
    face: FaceChecked | None = None
    ended: SessionEnded | None = None
    events: int = 0

    @property
    def end_status(self) -> int | None:
        return None if self.ended is None else self.ended.status

    @property
    def faults(self) -> dict[int, int]:
        """How often each fault code occurred."""
        tally: dict[int, int] = {}
        for rep in self.reps:
            for code in rep.status:
                if code != 0:
                    tally[code] = tally.get(code, 0) + 1
        return tally


def apply(summary: SessionSummary, event: Event) -> SessionSummary:
    events = summary.events + 1
    match event:
        case SessionPrepared():
            return replace(summary, state=State.PREPARED, prepared=event, events=events)
        case SessionStarted():
            return replace(summary, state=State.RUNNING, started=True, events=events)
        case FrameObserved():
            return replace(
                summary,
                frames=event.frame + 1,
                persons=summary.persons + (event.keypoints is not None),
                events=events,
            )
        case RepCounted():
            return replace(
                summary,
                count=event.count,
                total=event.total,
                reps=(*summary.reps, event),
                events=events,
            )
        case MotionViolated():
            return replace(summary, violation=event, events=events)
        case StopRequested():
            return replace(summary, stop_frame=event.frame, events=events)
        case FaceChecked():
            return replace(summary, face=event, events=events)
        case SessionEnded():
            state = State.VIOLATED if summary.violation is not None else State.STOPPED
            return replace(summary, state=state, ended=event, events=events)
    return replace(summary, events=events)


def fold(events: Iterable[Event]) -> SessionSummary:
    summary = SessionSummary()
    for event in events:
        summary = apply(summary, event)
    return summary
