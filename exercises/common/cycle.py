"""The repetition cycle: rest -> away toward the goal -> back, with hysteresis.

Every rep exercise watches one joint angle that *decreases* toward the goal: the elbow in a
push-up (locked out at rest, ~90 deg at the bottom) or a pull-up (straight in the hang, bent at
the top), the knee in a squat, the hip (shoulder-hip-knee) in a sit-up. Four thresholds, all in
degrees of that angle, turn the noisy signal into attempts:

    rest     >= rest: in the rest position (arms locked, standing, lying, hanging)
    attempt  <  attempt: the movement is an attempt (a smaller dip is an adjustment or jitter)
    goal     <= goal: far enough (deep enough, high enough)
    rebound  a turn of this many degrees back toward rest and away again, without reaching
             rest, ends one attempt and begins the next (a bounce that skipped the lockout)
    max_gap_s  the signal may be missing this long (keypoints lost, a cut) and the attempt
             goes on; after a longer gap the attempt is abandoned unjudged and counting
             resumes only once the rest position is seen again: a repetition that was not
             seen cannot be judged
    settle_s   before the first count (and after an abandoned attempt) the rest position
             must hold this long: the first frames of a person found, or of a new shot
             after a cut, are often wild
    max_speed_dps  a change faster than this (degrees per second; real repetitions stay
             under ~600) is keypoints jumping, at a cut, a flash or a re-detection, not a
             body moving: the movement is abandoned and counting waits for the rest
             position again

Because leaving rest, reaching the goal and coming back use different thresholds, jitter
around any one of them can never count twice. Until the signal first reaches rest, nothing is
counted: a person seen first mid-movement (entering the lane, or a clip that starts at the
bottom) is not credited with half a repetition.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum


@dataclass(frozen=True, slots=True)
class CycleThresholds:
    rest: float
    attempt: float
    goal: float
    rebound: float
    max_gap_s: float = 1.0
    settle_s: float = 0.15
    max_speed_dps: float = 1000.0

    def __post_init__(self) -> None:
        if not self.rest > self.attempt > self.goal:
            raise ValueError(f"need rest > attempt > goal, got {self}")
        if not self.rebound > 0:
            raise ValueError("rebound must be positive")


class Phase(IntEnum):
    UNKNOWN = 0  # not yet seen at rest
    REST = 1
    MOVING = 2


class Transition(IntEnum):
    NONE = 0
    STARTED = 1  # left rest: a movement (not yet an attempt) began
    GOAL = 2  # the goal was reached for the first time in this attempt
    ENDED_AT_REST = 3  # an attempt ended back at rest
    ENDED_BY_REBOUND = 4  # an attempt ended by turning back without reaching rest; a new one began
    CANCELLED = 5  # back at rest without ever becoming an attempt
    ABANDONED = 6  # the signal was lost too long mid-movement: nothing to judge


@dataclass(frozen=True, slots=True)
class Cycle:
    phase: Phase = Phase.UNKNOWN
    last_rest: int = -1  # last frame seen at rest (UNKNOWN: first frame of the settling run)
    start: int = -1  # first frame of the current movement (its last frame at rest, or the turn)
    from_rest: bool = True  # the movement began at rest (not at a rebound turn)
    attempted: bool = False
    extreme: float = 360.0  # furthest toward the goal in this movement
    extreme_frame: int = -1
    goal_frame: int = -1  # first frame at the goal, -1 if not reached
    peak: float = -360.0  # highest value since the extreme (toward rest)
    peak_frame: int = -1
    dip: float = 360.0  # lowest value since the peak
    dip_frame: int = -1
    seen: int = -1  # last frame with a value
    last: float = 0.0  # the value at `seen`

    # The attempt that a transition ended, for the caller's verdict (valid on ENDED_*).
    @property
    def active(self) -> bool:
        return self.phase is Phase.MOVING

    def step(
        self, th: CycleThresholds, frame: int, value: float, fps: float
    ) -> tuple[Cycle, Transition]:
        """Next state after `value` at `frame`; frames without a value are simply skipped."""
        if self.seen >= 0:
            gap = frame - self.seen
            if gap > th.max_gap_s * fps or abs(value - self.last) > th.max_speed_dps * gap / fps:
                lost = self.phase is Phase.MOVING
                state, transition = _UNKNOWN._advance(th, frame, value, fps)
                return _stamp(state, frame, value), Transition.ABANDONED if lost else transition
        state, transition = self._advance(th, frame, value, fps)
        return _stamp(state, frame, value), transition

    def _advance(
        self, th: CycleThresholds, frame: int, value: float, fps: float
    ) -> tuple[Cycle, Transition]:
        if self.phase is Phase.UNKNOWN:
            if value < th.rest:
                return Cycle(seen=frame), Transition.NONE
            since = self.last_rest if self.last_rest >= 0 else frame
            if frame - since + 1 >= th.settle_s * fps:
                return Cycle(phase=Phase.REST, last_rest=frame, seen=frame), Transition.NONE
            return Cycle(last_rest=since, seen=frame), Transition.NONE
        if self.phase is Phase.REST:
            if value >= th.rest:
                return Cycle(phase=Phase.REST, last_rest=frame, seen=frame), Transition.NONE
            return _begin(self.last_rest, True, th, frame, value), Transition.STARTED
        if value >= th.rest:
            ended = Transition.ENDED_AT_REST if self.attempted else Transition.CANCELLED
            return Cycle(phase=Phase.REST, last_rest=frame, seen=frame), ended
        if value < self.extreme:
            goal = self.goal_frame
            reached = goal < 0 and value <= th.goal
            nxt = Cycle(
                phase=Phase.MOVING,
                last_rest=self.last_rest,
                start=self.start,
                from_rest=self.from_rest,
                attempted=self.attempted or value < th.attempt,
                extreme=value,
                extreme_frame=frame,
                goal_frame=frame if reached else goal,
                peak=value,
                peak_frame=frame,
                dip=value,
                dip_frame=frame,
                seen=frame,
            )
            return nxt, Transition.GOAL if reached else Transition.NONE
        if value > self.peak:
            nxt = _moved(self, frame, peak=value, peak_frame=frame, dip=value, dip_frame=frame)
            return nxt, Transition.NONE
        if value < self.dip:
            nxt = _moved(
                self, frame, peak=self.peak, peak_frame=self.peak_frame, dip=value, dip_frame=frame
            )
            if (
                self.attempted
                and self.peak - self.extreme >= th.rebound
                and self.peak - value >= th.rebound
            ):
                # Turned back toward the goal: the previous attempt ended at the turn.
                return _rebound(nxt, th), Transition.ENDED_BY_REBOUND
            return nxt, Transition.NONE
        return _moved(
            self,
            frame,
            peak=self.peak,
            peak_frame=self.peak_frame,
            dip=self.dip,
            dip_frame=self.dip_frame,
        ), Transition.NONE


def _stamp(c: Cycle, frame: int, value: float) -> Cycle:
    if c.seen == frame and c.last == value:
        return c
    return replace(c, seen=frame, last=value)


def _begin(start: int, from_rest: bool, th: CycleThresholds, frame: int, value: float) -> Cycle:
    return Cycle(
        phase=Phase.MOVING,
        last_rest=start,
        start=start,
        from_rest=from_rest,
        attempted=value < th.attempt,
        extreme=value,
        extreme_frame=frame,
        goal_frame=frame if value <= th.goal else -1,
        peak=value,
        peak_frame=frame,
        dip=value,
        dip_frame=frame,
        seen=frame,
    )


def _moved(
    c: Cycle, frame: int, *, peak: float, peak_frame: int, dip: float, dip_frame: int
) -> Cycle:
    return Cycle(
        phase=c.phase,
        last_rest=c.last_rest,
        start=c.start,
        from_rest=c.from_rest,
        attempted=c.attempted,
        extreme=c.extreme,
        extreme_frame=c.extreme_frame,
        goal_frame=c.goal_frame,
        peak=peak,
        peak_frame=peak_frame,
        dip=dip,
        dip_frame=dip_frame,
        seen=frame,
    )


def _rebound(c: Cycle, th: CycleThresholds) -> Cycle:
    """The new attempt that begins at the turn (c.peak_frame) and has reached c.dip so far."""
    return Cycle(
        phase=Phase.MOVING,
        last_rest=c.last_rest,
        start=c.peak_frame,
        from_rest=False,
        attempted=c.dip < th.attempt,
        extreme=c.dip,
        extreme_frame=c.dip_frame,
        goal_frame=c.dip_frame if c.dip <= th.goal else -1,
        peak=c.dip,
        peak_frame=c.dip_frame,
        dip=c.dip,
        dip_frame=c.dip_frame,
        seen=c.seen,
    )


@dataclass(frozen=True, slots=True)
class Median3:
    """Median of the last three values: removes single-frame keypoint spikes, lags one frame."""

    a: float | None = None
    b: float | None = None

    def push(self, value: float) -> tuple[Median3, float]:
        a, b = self.a, self.b
        nxt = Median3(b, value)
        if a is None or b is None:
            return nxt, value
        if a > b:
            a, b = b, a
        return nxt, a if value < a else b if value > b else value

    def reset(self) -> Median3:
        return _EMPTY_MEDIAN


_EMPTY_MEDIAN = Median3()
_UNKNOWN = Cycle()
