"""Deterministic replay: re-derive a stored session and compare, event by event.

The recorded *inputs* (frames, stops, source failures) are fed through a fresh `Session`
running the installed rules; every derived event and the final outcome must equal what was
recorded. The first difference is reported as expected-vs-got, the way a workflow engine
reports non-determinism. Versions recorded in the session gate the comparison: replaying
under different rules is a mismatch to report, unless the caller explicitly asks to re-score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from khfsm.domain.errors import DomainError
from khfsm.domain.events import (
    Event,
    ExamineeChanged,
    ExamineeLost,
    FaceChecked,
    FrameObserved,
    SessionEnded,
    SessionPrepared,
    SessionStarted,
    SourceFailed,
    StopRequested,
)
from khfsm.domain.exercise import Exercise
from khfsm.domain.fold import SessionSummary, fold
from khfsm.domain.session import Session


@dataclass(frozen=True, slots=True)
class Divergence:
    index: int  # position in the stream (= sequence number) of the first difference
    expected: Event | None  # what was recorded (None: the replay produced an extra event)
    got: Event | None  # what the rules derive now (None: the replay produced fewer events)

    def describe(self) -> str:
        return (
            f"event {self.index} diverges:\n"
            f"  expected (recorded): {_short(self.expected)}\n"
            f"  got (replayed):      {_short(self.got)}"
        )


@dataclass(frozen=True, slots=True)
class ReplayReport:
    identical: bool
    divergence: Divergence | None
    recorded: SessionSummary
    replayed: SessionSummary
    recorded_rules_version: str
    installed_rules_version: str
    rescored: bool = False

    @property
    def version_mismatch(self) -> bool:
        return self.recorded_rules_version != self.installed_rules_version


class ReplayError(DomainError):
    pass


def rederive(events: Sequence[Event], exercise: Exercise | None) -> list[Event]:
    """Run the recorded inputs of `events` through a fresh session; returns the new stream."""
    if not events or not isinstance(events[0], SessionPrepared):
        raise ReplayError("a session stream must begin with SessionPrepared")
    session = Session(exercise, who=f"capture {events[0].capture_id}")
    produced: list[Event] = []
    recorded_end: SessionEnded | None = None
    for event in events:
        match event:
            case SessionPrepared():
                produced += session.prepare(event)
            case SessionStarted():
                produced += session.start(event)
            case FrameObserved():
                if session.machine.ended:
                    produced.append(event)  # a recorded frame after the end: keep, to compare
                else:
                    produced += session.observe(event)
            case StopRequested():
                produced += session.request_stop(event)
            case SourceFailed():
                produced += session.fail(event)
            case FaceChecked() | ExamineeChanged() | ExamineeLost():
                produced.append(event)  # inputs the rules do not read: kept, to compare
            case SessionEnded():
                recorded_end = event
            case _:
                pass  # derived events are re-derived, not copied
    if exercise is None and recorded_end is not None:
        # Sessions without rules (the face check) record their own end: carry it over.
        produced.append(recorded_end.without_evidence())
    # The evidence fields are the recording's, not the rules': carry them over for comparison.
    if recorded_end is not None:
        produced = [
            e.sealed(recorded_end.video_sha256, recorded_end.video_bytes)
            if isinstance(e, SessionEnded)
            else e
            for e in produced
        ]
    return produced


def first_divergence(expected: Sequence[Event], got: Sequence[Event]) -> Divergence | None:
    for index in range(max(len(expected), len(got))):
        left = expected[index] if index < len(expected) else None
        right = got[index] if index < len(got) else None
        if left != right:
            return Divergence(index=index, expected=left, got=right)
    return None


def replay(
    events: Sequence[Event], exercise: Exercise | None, *, rescore: bool = False
) -> ReplayReport:
    """Compare a stored stream with what `exercise` derives from its inputs.

    Raises `ReplayError` when the recorded rules version differs from the installed one,
    unless `rescore` is set: then the comparison is made anyway and reported as a re-score.
    """
    if not events or not isinstance(events[0], SessionPrepared):
        raise ReplayError("a session stream must begin with SessionPrepared")
    prepared = events[0]
    installed = exercise.rules_version if exercise is not None else prepared.rules_version
    if installed != prepared.rules_version and not rescore:
        raise ReplayError(
            f"session was judged under {prepared.task} rules {prepared.rules_version}, "
            f"installed rules are {installed}: replay cannot be exact; "
            "use re-scoring to judge it under the installed rules"
        )
    # Re-scoring judges the recorded inputs under the installed rules: the stream compared
    # is the recorded one with the installed rules version, so only verdicts can differ.
    source = list(events)
    if rescore:
        source[0] = _with_rules_version(prepared, installed)
    produced = rederive(source, exercise)
    divergence = first_divergence(source, produced)
    return ReplayReport(
        identical=divergence is None,
        divergence=divergence,
        recorded=fold(events),
        replayed=fold(produced),
        recorded_rules_version=prepared.rules_version,
        installed_rules_version=installed,
        rescored=rescore,
    )


def _with_rules_version(prepared: SessionPrepared, version: str) -> SessionPrepared:
    from dataclasses import replace

    return replace(prepared, rules_version=version)


def _short(event: Event | None) -> str:
    if event is None:
        return "(nothing)"
    if isinstance(event, FrameObserved):
        person = "no person" if event.keypoints is None else f"person, score {event.score:.3f}"
        return f"FrameObserved(frame={event.frame}, {person})"
    return repr(event)
