"""A session's state, counts and outcome: one pure evolution over its events.

`evolve(summary, event)` is the only place that decides what an event does to a session's
state and counts. The fold (`fold`), the store's summary columns (`khfsm.store.sql`) and the
CLI's listing all go through it, so they cannot disagree about a session. The scalar fields
(`state`, `end_status`, `count`, `total`, `frames`, `events`) evolve from the scalar fields
alone: a summary rebuilt from the store's columns evolves exactly like the full one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from khfsm.domain.codes import EndStatus
from khfsm.domain.events import (
    Event,
    FaceChecked,
    FrameObserved,
    MotionViolated,
    RepCounted,
    ReviewDecided,
    SessionEnded,
    SessionPrepared,
    SessionStarted,
    StopRequested,
)
from khfsm.domain.face import describe as describe_face
from khfsm.domain.machine import State, end_state


@dataclass(frozen=True, slots=True)
class SessionSummary:
    state: State = State.IDLE
    end_status: int | None = None  # an EndStatus value once ended
    count: int = 0
    total: int = 0
    frames: int = 0  # frames assessed
    events: int = 0
    # What only a fold over the whole stream knows (the store keeps none of it):
    prepared: SessionPrepared | None = None
    started: bool = False
    persons: int = 0  # frames in which somebody was found
    reps: tuple[RepCounted, ...] = ()
    violation: MotionViolated | None = None
    stop_frame: int | None = None
    face: FaceChecked | None = None
    end: SessionEnded | None = None
    decisions: tuple[ReviewDecided, ...] = ()  # reviewers' rulings, in the order recorded

    @property
    def ended(self) -> bool:
        return self.end_status is not None

    @property
    def faults(self) -> dict[int, int]:
        """How often each fault code occurred."""
        tally: dict[int, int] = {}
        for rep in self.reps:
            for code in rep.status:
                if code != 0:
                    tally[code] = tally.get(code, 0) + 1
        return tally

    @property
    def outcome(self) -> str:
        """The result in words: a face check's match / mismatch / no face with the
        similarity, otherwise the end status and its message ("" while it runs)."""
        if self.face is not None:
            return describe_face(self.face)
        if self.end_status is None:
            return ""
        message = self.end.message if self.end is not None else end_message(self.end_status)
        return f"{self.end_status} {message}"


def end_message(status: int) -> str:
    try:
        return EndStatus(status).message
    except ValueError:
        return "unknown end status"


def evolve(summary: SessionSummary, event: Event) -> SessionSummary:
    """The summary after `event`; pure."""
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
        case ReviewDecided():
            # A ruling is beside the machine's result, never in it: the counts stay the
            # machine's (`khfsm.domain.review` computes the reviewed result).
            return replace(summary, decisions=(*summary.decisions, event), events=events)
        case SessionEnded():
            # The end event carries the session's final counts: it is what the tablet saw.
            return replace(
                summary,
                state=end_state(event.status),
                end_status=event.status,
                count=event.count,
                total=event.total,
                frames=event.frames,
                end=event,
                events=events,
            )
    return replace(summary, events=events)


def fold(events: Iterable[Event], summary: SessionSummary | None = None) -> SessionSummary:
    """`evolve` over `events`, from a fresh session or from `summary`."""
    summary = summary if summary is not None else SessionSummary()
    for event in events:
        summary = evolve(summary, event)
    return summary
