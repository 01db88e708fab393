"""Finding attempts: every down-and-up cycle of a 1-D movement signal, whatever its quality.

This is the first half of every `*-2` rule set (the second is the judge, `judging.py`): the
detector only says *that* the examinee made an attempt and where (start, turn, end); whether
it meets the exam standard is the judge's business. An attempt that is too shallow, or never
locks out, is still an attempt: it is found here and judged with its fault.

Usage (one detector per session, in the rules' frozen state)::

    SPEC = AttemptSpec(min_excursion=20.0, complete_at=150.0)   # degrees of the signal
    det, ev = state.detector.step(SPEC, frame, value, config.fps)  # value None: not seen
    if ev.started: ...            # a new attempt began (reset the per-attempt statistics)
    if ev.turned is not None: ... # it turned back at its extreme (judge here to count "at
                                  # the top", like a sit-up)
    if ev.ended is not None: ...  # it is over: judge `ev.ended` (an `Attempt`) now
    if ev.abandoned: ...          # lost mid-attempt (dropout or cut): nothing to judge

Convention: the signal *decreases* toward the goal of the movement (the elbow angle in a
push-up, the hip angle in a sit-up); negate a signal that grows. Rest is the high side.

How an attempt is found (a zig-zag with hysteresis, no absolute angle at all):

- TOP: the examinee is at (or near) their own rest; the detector keeps the highest value
  seen since the last attempt. A drop of `h` below that top starts an attempt (STARTED),
  which began at the last frame within `TOP_JITTER` x `min_excursion` of the top.
- DOWN: it follows the signal to its lowest value; a rise of `h` from there confirms the turn
  (TURNED: the deepest point of the attempt is now known).
- UP: the attempt ends (ENDED) at the first of
  (a) the signal reaching `complete_at`, the exam standard's rest value (arms locked, lying
      down): a complete attempt, judged at once;
  (b) the signal turning back toward the goal by `h` without reaching `complete_at` (a
      bounce): the attempt ended at that peak, and the next one starts there;
  (c) the signal holding still, not rising for `hold_s`, after recovering at least half of
      its excursion: the examinee stopped short of the standard's rest (judged incomplete).

The hysteresis `h` is relative to this examinee's own range of motion: the largest of
`min_excursion` (from body mechanics: the smallest movement that can be a deliberate
attempt, far above keypoint jitter) and `relative` x the median excursion of their last
five attempts. So a person with a large range is not credited for fidgets, one with a small
range (a crunch, an incline, a foreshortened camera) still has every cycle found, and jitter
around any level can never count twice (it must travel `h` each way).

Robustness:
- `None` values (nobody seen, not in position, landmarks hidden) are skipped; a gap longer
  than `max_gap_s` abandons an attempt in progress (a repetition not seen cannot be judged).
- The signal is the median of its last three values, so a single-frame keypoint spike is
  ignored.
- A change faster than `max_speed` per second is keypoints jumping (a cut, a flash, a
  re-detection of someone else), not a body: the attempt in progress is abandoned and the
  detector starts over from the new value as its top.
- A person seen first mid-movement (entering the lane, a clip that starts at the bottom) is
  never credited: the detector's first value is a top, and an attempt needs a drop of `h`
  from a top followed by a turn.

Everything is pure and allocation-light: `step` returns a new frozen detector and a shared
`NOTHING` event on the many frames where nothing happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

# How many past excursions make the examinee's own range (the median of these).
RANGE_MEMORY = 5
# A value within this fraction of `min_excursion` below the top is still "at the top"
# (keypoint jitter), for placing the start of an attempt.
TOP_JITTER = 0.25


@dataclass(frozen=True, slots=True)
class AttemptSpec:
    """What an exercise tells the detector about its signal (all in the signal's units).

    min_excursion  smallest down-and-up movement that is an attempt (body mechanics); also
                   the minimum hysteresis
    complete_at    the exam standard's rest value (None: no early completion); reaching it
                   on the way up ends the attempt at once, as complete
    relative       hysteresis as a fraction of the examinee's median excursion
    hold_s         not rising for this long after recovering half the excursion ends the
                   attempt short of `complete_at`
    max_gap_s      longest tolerated stretch without a value inside an attempt
    max_speed      fastest change a body makes, per second (faster is a cut)
    """

    min_excursion: float
    complete_at: float | None = None
    relative: float = 0.25
    hold_s: float = 1.0
    max_gap_s: float = 1.0
    max_speed: float = 1000.0

    def __post_init__(self) -> None:
        if not self.min_excursion > 0:
            raise ValueError("min_excursion must be positive")
        if not 0 <= self.relative < 1:
            raise ValueError("relative must be in [0, 1)")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt as the detector saw it (frames are the session's frame indices)."""

    start_frame: int  # where the descent began (the top it started from)
    bottom_frame: int  # its extreme toward the goal
    end_frame: int  # where it ended (the peak it came back to); -1 while in progress
    top: float  # the signal at the start
    bottom: float  # the signal at the extreme
    end: float  # the signal at the end (at the turn: the value when the turn was confirmed)
    complete: bool  # ended by reaching `complete_at` (case (a) above)
    from_rest: bool  # began at or above `complete_at` (always True without one)

    @property
    def excursion(self) -> float:
        return self.top - self.bottom


class Phase(IntEnum):
    UNKNOWN = 0  # no value yet (or just reset)
    TOP = 1
    DOWN = 2
    UP = 3


@dataclass(frozen=True, slots=True)
class Events:
    """What one step found; most steps return the shared `NOTHING`."""

    started: bool = False
    turned: Attempt | None = None
    ended: Attempt | None = None
    abandoned: bool = False


NOTHING = Events()


@dataclass(frozen=True, slots=True)
class AttemptDetector:
    phase: Phase = Phase.UNKNOWN
    top: float = 0.0  # TOP: running max; DOWN/UP: the attempt's start value
    top_frame: int = -1
    bottom: float = 0.0
    bottom_frame: int = -1
    peak: float = 0.0  # UP: highest value since the turn
    peak_frame: int = -1
    seen: int = -1  # last frame with a value
    last: float = 0.0  # the filtered value at `seen`
    m1: float | None = None  # the two previous raw values, for the median of three
    m2: float | None = None
    ranges: tuple[float, ...] = ()  # excursions of the last RANGE_MEMORY attempts

    @property
    def in_attempt(self) -> bool:
        return self.phase is Phase.DOWN or self.phase is Phase.UP

    def hysteresis(self, spec: AttemptSpec) -> float:
        """`h`: the larger of the body-mechanics minimum and the examinee's own range share."""
        if not self.ranges:
            return spec.min_excursion
        ordered = sorted(self.ranges)
        median = ordered[len(ordered) // 2]
        return max(spec.min_excursion, spec.relative * median)

    def current(self, spec: AttemptSpec) -> Attempt | None:
        """The attempt in progress (for `finish` at the end of a test), or None."""
        if not self.in_attempt:
            return None
        up = self.phase is Phase.UP
        return Attempt(
            start_frame=self.top_frame,
            bottom_frame=self.bottom_frame,
            end_frame=self.peak_frame if up else self.bottom_frame,
            top=self.top,
            bottom=self.bottom,
            end=self.peak if up else self.bottom,
            complete=False,
            from_rest=_from_rest(spec, self.top),
        )

    def step(
        self, spec: AttemptSpec, frame: int, value: float | None, fps: float
    ) -> tuple[AttemptDetector, Events]:
        """Next detector after `value` (None: not measurable this frame) at `frame`."""
        if value is None:
            if self.seen >= 0 and frame - self.seen > spec.max_gap_s * fps:
                return _reset(self.ranges), (Events(abandoned=True) if self.in_attempt else NOTHING)
            return self, NOTHING
        if self.seen >= 0 and frame - self.seen > spec.max_gap_s * fps:
            lost = self.in_attempt
            fresh = _reset(self.ranges)
            nxt, _ = fresh.step(spec, frame, value, fps)
            return nxt, Events(abandoned=True) if lost else NOTHING
        # Median of three raw values (fewer right after a reset).
        a, b = self.m1, self.m2
        if a is None or b is None:
            filtered = value
        else:
            lo, hi = (a, b) if a <= b else (b, a)
            filtered = lo if value < lo else hi if value > hi else value
        if (
            self.seen >= 0
            and abs(filtered - self.last) > spec.max_speed * (frame - self.seen) / fps
        ):
            lost = self.in_attempt
            fresh = AttemptDetector(
                phase=Phase.TOP,
                top=value,
                top_frame=frame,
                seen=frame,
                last=value,
                m2=value,
                ranges=self.ranges,
            )
            return fresh, Events(abandoned=True) if lost else NOTHING
        return self._advance(spec, frame, filtered, value, fps)

    def _advance(
        self, spec: AttemptSpec, frame: int, v: float, raw: float, fps: float
    ) -> tuple[AttemptDetector, Events]:
        h = self.hysteresis(spec)
        base = _Tail(seen=frame, last=v, m1=self.m2, m2=raw, ranges=self.ranges)
        phase = self.phase
        if phase is Phase.UNKNOWN or (phase is Phase.TOP and v >= self.top):
            return base.make(Phase.TOP, top=v, top_frame=frame), NOTHING
        if phase is Phase.TOP:
            if self.top - v >= h:
                return base.make(
                    Phase.DOWN,
                    top=self.top,
                    top_frame=self.top_frame,
                    bottom=v,
                    bottom_frame=frame,
                ), Events(started=True)
            if self.top - v <= TOP_JITTER * spec.min_excursion:
                # Still at the top (within jitter of it): the descent has not begun yet, so
                # the attempt's start moves here and its time window stays honest after a
                # long rest.
                return base.make(Phase.TOP, top=self.top, top_frame=frame), NOTHING
            return self._with(base), NOTHING
        if phase is Phase.DOWN:
            if v < self.bottom:
                return base.make(
                    Phase.DOWN,
                    top=self.top,
                    top_frame=self.top_frame,
                    bottom=v,
                    bottom_frame=frame,
                ), NOTHING
            if v - self.bottom >= h:
                turned = base.make(
                    Phase.UP,
                    top=self.top,
                    top_frame=self.top_frame,
                    bottom=self.bottom,
                    bottom_frame=self.bottom_frame,
                    peak=v,
                    peak_frame=frame,
                )
                so_far = Attempt(
                    start_frame=self.top_frame,
                    bottom_frame=self.bottom_frame,
                    end_frame=-1,
                    top=self.top,
                    bottom=self.bottom,
                    end=v,
                    complete=False,
                    from_rest=_from_rest(spec, self.top),
                )
                if spec.complete_at is not None and v >= spec.complete_at:
                    return turned._end(spec, frame, v, complete=True, turned=so_far)
                return turned, Events(turned=so_far)
            return self._with(base), NOTHING
        # Phase.UP
        if spec.complete_at is not None and v >= spec.complete_at:
            return self._with(base)._end(spec, frame, v, complete=True)
        if v > self.peak:
            return base.make(
                Phase.UP,
                top=self.top,
                top_frame=self.top_frame,
                bottom=self.bottom,
                bottom_frame=self.bottom_frame,
                peak=v,
                peak_frame=frame,
            ), NOTHING
        if self.peak - v >= h:
            # A bounce: this attempt ended at its peak; the next began there.
            ended = self._attempt(spec, complete=False)
            nxt = AttemptDetector(
                Phase.DOWN,
                top=self.peak,
                top_frame=self.peak_frame,
                bottom=v,
                bottom_frame=frame,
                seen=frame,
                last=v,
                m1=self.m2,
                m2=raw,
                ranges=_remember(self.ranges, ended.excursion),
            )
            return nxt, Events(started=True, ended=ended)
        held = frame - self.peak_frame >= spec.hold_s * fps
        if held and self.peak - self.bottom >= 0.5 * (self.top - self.bottom):
            ended = self._attempt(spec, complete=False)
            nxt = AttemptDetector(
                Phase.TOP,
                top=self.peak,
                top_frame=self.peak_frame,
                seen=frame,
                last=v,
                m1=self.m2,
                m2=raw,
                ranges=_remember(self.ranges, ended.excursion),
            )
            return nxt, Events(ended=ended)
        return self._with(base), NOTHING

    def _with(self, base: _Tail) -> AttemptDetector:
        return base.make(
            self.phase,
            top=self.top,
            top_frame=self.top_frame,
            bottom=self.bottom,
            bottom_frame=self.bottom_frame,
            peak=self.peak,
            peak_frame=self.peak_frame,
        )

    def _attempt(self, spec: AttemptSpec, *, complete: bool) -> Attempt:
        return Attempt(
            start_frame=self.top_frame,
            bottom_frame=self.bottom_frame,
            end_frame=self.peak_frame,
            top=self.top,
            bottom=self.bottom,
            end=self.peak,
            complete=complete,
            from_rest=_from_rest(spec, self.top),
        )

    def _end(
        self,
        spec: AttemptSpec,
        frame: int,
        v: float,
        *,
        complete: bool,
        turned: Attempt | None = None,
    ) -> tuple[AttemptDetector, Events]:
        ended = Attempt(
            start_frame=self.top_frame,
            bottom_frame=self.bottom_frame,
            end_frame=frame,
            top=self.top,
            bottom=self.bottom,
            end=v,
            complete=complete,
            from_rest=_from_rest(spec, self.top),
        )
        nxt = AttemptDetector(
            Phase.TOP,
            top=v,
            top_frame=frame,
            seen=self.seen,
            last=self.last,
            m1=self.m1,
            m2=self.m2,
            ranges=_remember(self.ranges, ended.excursion),
        )
        return nxt, Events(turned=turned, ended=ended)


@dataclass(frozen=True, slots=True)
class _Tail:
    """The bookkeeping every next state carries (last value, median buffer, ranges)."""

    seen: int
    last: float
    m1: float | None
    m2: float | None
    ranges: tuple[float, ...]

    def make(
        self,
        phase: Phase,
        *,
        top: float,
        top_frame: int,
        bottom: float = 0.0,
        bottom_frame: int = -1,
        peak: float = 0.0,
        peak_frame: int = -1,
    ) -> AttemptDetector:
        return AttemptDetector(
            phase, top, top_frame, bottom, bottom_frame, peak, peak_frame,
            self.seen, self.last, self.m1, self.m2, self.ranges,
        )  # fmt: skip


def _from_rest(spec: AttemptSpec, top: float) -> bool:
    return spec.complete_at is None or top >= spec.complete_at


def _remember(ranges: tuple[float, ...], excursion: float) -> tuple[float, ...]:
    return (*ranges[-(RANGE_MEMORY - 1) :], excursion)


def _reset(ranges: tuple[float, ...]) -> AttemptDetector:
    return AttemptDetector(ranges=ranges)
