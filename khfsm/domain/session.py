"""The session aggregate: the state machine, the task's rules and the running counts.

Every command takes an *input* event (what the outside world observed or asked) and returns
the events to append: the input itself followed by whatever the rules derive from it. The
live pipeline and `replay` both drive this class, so a stored stream re-derives bit for bit.

The task decides which inputs a session accepts: an exercise (`Exercise`) judges frames, the
face check (`FaceCheck`) judges one `FaceChecked`; stop and failure end either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from khfsm.domain.codes import EndStatus
from khfsm.domain.errors import DomainError
from khfsm.domain.events import (
    Event,
    FaceChecked,
    FrameObserved,
    MotionViolated,
    RepCounted,
    SessionEnded,
    SessionPrepared,
    SessionStarted,
    SourceFailed,
    StopRequested,
)
from khfsm.domain.exercise import Exercise, MotionForbidden, RepJudged, RulesConfig, Verdict
from khfsm.domain.face import FaceCheck
from khfsm.domain.machine import SessionMachine, State, Trigger
from khfsm.domain.task import Task


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a running session has come: its counts and the frames assessed."""

    count: int = 0
    total: int = 0
    frames: int = 0  # frames assessed so far


class Session:
    """One test of one lane, from prepare to its end."""

    def __init__(self, task: Task, who: str = "the session") -> None:
        self.task = task
        # Checked once: a runtime protocol check is too slow for every frame.
        self._exercise: Exercise | None = task if isinstance(task, Exercise) else None
        self.machine = SessionMachine(who)
        self.prepared: SessionPrepared | None = None
        self.config: RulesConfig | None = None
        self.progress = Progress()
        self.end: SessionEnded | None = None  # the event that ended it, once it has
        self._rules_state: object = None

    @property
    def state(self) -> State:
        return self.machine.current

    @property
    def ended(self) -> bool:
        return self.machine.ended

    # -- commands ---------------------------------------------------------------------------

    def prepare(self, event: SessionPrepared) -> list[Event]:
        self.machine.fire(Trigger.PREPARE)
        self.prepared = event
        if self._exercise is not None:
            self.config = RulesConfig(
                level=event.level,
                fps=event.fps,
                frame_width=event.frame_width,
                frame_height=event.frame_height,
            )
            self._rules_state = self._exercise.initial_state(self.config)
        return [event]

    def start(self, event: SessionStarted) -> list[Event]:
        self.machine.fire(Trigger.START)
        return [event]

    def observe(self, event: FrameObserved) -> list[Event]:
        """One assessed frame; may count a rep, stop on a violation, or end on time."""
        if self.state is not State.RUNNING:
            raise DomainError(f"{self.machine.who} is {self.state.value}; frames are not assessed")
        if event.frame != self.progress.frames:
            raise DomainError(
                f"frame {event.frame} arrived out of order (expected {self.progress.frames})"
            )
        exercise, config = self._rules()
        self._rules_state, verdicts = exercise.step(
            config, self._rules_state, event.frame, event.pose()
        )
        self.progress = Progress(self.progress.count, self.progress.total, event.frame + 1)
        events: list[Event] = [event, *self._apply_verdicts(verdicts)]
        if self.state is State.RUNNING and self.progress.frames >= self._prepared().frames:
            # Time up ends the test like a stop: the rep in progress is judged the same way.
            events += self._finish_rules(self.progress.frames)
            events += self._end_if_running(Trigger.TIME_UP, EndStatus.TIME_UP)
        return events

    def request_stop(self, event: StopRequested) -> list[Event]:
        """The operator's stop. Idempotent: on an ended session it records nothing."""
        if self.machine.ended:
            self.machine.fire(Trigger.STOP)
            return []
        if self.state is State.PREPARED:
            self.machine.fire(Trigger.STOP)
            return [event, self._ended(EndStatus.STOPPED)]
        return [
            event,
            *self._finish_rules(event.frame),
            *self._end_if_running(Trigger.STOP, EndStatus.STOPPED),
        ]

    def fail(self, event: SourceFailed) -> list[Event]:
        if self.machine.ended:
            return []
        status = EndStatus(event.status)
        if self.state is State.PREPARED:
            self.machine.fire(Trigger.FAIL)
            return [event, self._ended(status, event.message)]
        return [
            event,
            *self._finish_rules(event.frame),
            *self._end_if_running(Trigger.FAIL, status, event.message),
        ]

    def check_face(self, event: FaceChecked) -> list[Event]:
        """The face check's one result; the check ends normally (-2) with its message."""
        if not isinstance(self.task, FaceCheck):
            raise DomainError(f"{self.machine.who} is a {self.task.task} test, not a face check")
        if self.state is not State.RUNNING:
            raise DomainError(f"{self.machine.who} is {self.state.value}; no face is checked")
        return [event, *self._end(Trigger.TIME_UP, EndStatus.TIME_UP, event.message)]

    # -- helpers ----------------------------------------------------------------------------

    def _rules(self) -> tuple[Exercise, RulesConfig]:
        if self._exercise is None or self.config is None:
            raise DomainError(
                f"{self.machine.who} is a {self.task.task} test; it assesses no frames"
            )
        return self._exercise, self.config

    def _prepared(self) -> SessionPrepared:
        if self.prepared is None:
            raise DomainError(f"{self.machine.who} is not prepared")
        return self.prepared

    def _finish_rules(self, frame: int) -> list[Event]:
        if self._exercise is None or self.config is None or self.state is not State.RUNNING:
            return []
        return self._apply_verdicts(self._exercise.finish(self.config, self._rules_state, frame))

    def _apply_verdicts(self, verdicts: Sequence[Verdict]) -> list[Event]:
        events: list[Event] = []
        for verdict in verdicts:
            if self.state is not State.RUNNING:
                break  # nothing counts after the test has ended
            if isinstance(verdict, RepJudged):
                events.append(self._count(verdict))
            elif isinstance(verdict, MotionForbidden):
                events.append(
                    MotionViolated(
                        frame=verdict.frame,
                        code=verdict.code,
                        message=verdict.message,
                        measurements=dict(verdict.measurements),
                    )
                )
                events += self._end(Trigger.VIOLATE, EndStatus.UNALLOWED_MOTION, verdict.message)
        return events

    def _count(self, verdict: RepJudged) -> RepCounted:
        _, config = self._rules()
        valid = verdict.status == (0,)
        total = self.progress.total + 1
        count = self.progress.count + (1 if valid else 0)
        self.progress = Progress(count, total, self.progress.frames)
        return RepCounted(
            rep=total,
            status=tuple(verdict.status),
            start_frame=verdict.start_frame,
            end_frame=verdict.end_frame,
            time=(
                round(config.seconds(verdict.start_frame), 1),
                round(config.seconds(verdict.end_frame), 1),
            ),
            count=count,
            total=total,
            measurements=dict(verdict.measurements),
        )

    def _end_if_running(
        self, trigger: Trigger, status: EndStatus, message: str = ""
    ) -> list[Event]:
        # `finish` may itself have ended the test (a violation judged at the end).
        return self._end(trigger, status, message) if self.state is State.RUNNING else []

    def _end(self, trigger: Trigger, status: EndStatus, message: str = "") -> list[Event]:
        self.machine.fire(trigger)
        return [self._ended(status, message)]

    def _ended(self, status: EndStatus, message: str = "") -> SessionEnded:
        self.end = SessionEnded(
            status=int(status),
            message=message or status.message,
            frames=self.progress.frames,
            count=self.progress.count,
            total=self.progress.total,
        )
        return self.end
