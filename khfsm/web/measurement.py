"""The deciding measurement of a stored session over time, for the review page's plot.

Each exercise's rules (`exercises/*2.py`) find attempts in one signal, a joint angle read in
3-D, and judge each attempt's extreme against the level's limits. The plot shows a judge that
same signal, recomputed here from the stored keypoints with the rules' own functions
(`read_skeleton`, `pair_angle`, the squat's thigh elevation, the pull-up's on-the-bar test) and
the rules' own thresholds for the session's level, and marks each repetition's judged value
(from its stored `RepCounted.measurements`, the number the verdict was made on).

The series is the raw per-frame signal: the attempt detector smooths it (a 3-frame median),
so a judged extreme can sit a degree or two off the raw curve; the mark is placed at the
frame of the curve's extreme within the repetition, at the judged value. Rules versions
without a series here (version 1, the arm hang) answer `available: false` with the reason.

Pure: no I/O; the router reads the events from the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from khfsm.domain.events import Event, FrameObserved, RepCounted, SessionPrepared

# A signal reader: (the rules module, the level, a stateful scratch dict, the skeleton) ->
# the value, or None where the rules read nothing (not in position, not seen).
Reader = Callable[[Any, int, dict[str, Any], Any], float | None]


@dataclass(frozen=True, slots=True)
class Line:
    """A threshold drawn across the plot: the rules' name for it, its value, its meaning."""

    name: str
    value: float
    meaning: str


@dataclass(frozen=True, slots=True)
class Spec:
    """How one rules version's deciding measurement is read and judged."""

    module: str  # the rules module under khfsm.exercises
    name: str  # what the plot is called, in a judge's words
    unit: str
    description: str  # which signal of the rules it is, and what decides a repetition
    read: Reader
    lines: Callable[[Any], list[Line]]  # the level's thresholds -> lines
    judged_key: str  # the RepCounted measurement holding the repetition's judged extreme
    extreme: str  # "min" or "max": which end of the curve the judged value is


@dataclass(slots=True)
class Series:
    available: bool
    task: str = ""
    rules_version: str = ""
    level: int = 0
    fps: float = 0.0
    name: str = ""
    unit: str = ""
    description: str = ""
    reason: str = ""
    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    thresholds: list[Line] = field(default_factory=list)
    reps: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "task": self.task,
            "rules_version": self.rules_version,
            "level": self.level,
            "fps": self.fps,
            "name": self.name,
            "unit": self.unit,
            "description": self.description,
            "reason": self.reason,
            "frames": self.frames,
            "times": self.times,
            "values": self.values,
            "thresholds": [
                {"name": line.name, "value": line.value, "meaning": line.meaning}
                for line in self.thresholds
            ],
            "reps": self.reps,
        }


# -- the readers: each mirrors the lines of its rules' `step` that feed the attempt detector --


def _pushup_elbow(rules: Any, level: int, scratch: dict[str, Any], skel: Any) -> float | None:
    # pushup2.step: the elbow is read only while the body is in the push-up position.
    if rules.body_axis_from_vertical(skel) < rules.IN_POSITION_MIN_DEG:
        return None
    angle: float | None = skel.pair_angle(rules.ELBOW_L, rules.ELBOW_R)
    return angle


def _situp_hip(rules: Any, level: int, scratch: dict[str, Any], skel: Any) -> float | None:
    angle: float | None = skel.pair_angle(rules.HIP_L, rules.HIP_R)
    return angle


def _pullup_elbow(rules: Any, level: int, scratch: dict[str, Any], skel: Any) -> float | None:
    # pullup2.step: the elbow counts only while the hands are on the bar; the vertical is
    # taken from the last straight-arm hang.
    up = scratch.setdefault("up", rules.CAMERA_UP)
    hanging = rules.on_bar(skel, up)
    if hanging is True:
        scratch["up"] = rules.hang_axis(skel) or up
    if hanging is False:
        return None
    angle: float | None = rules.elbow_deg(skel)
    return angle


def _squat_thigh(rules: Any, level: int, scratch: dict[str, Any], skel: Any) -> float | None:
    # squat2.step: the vertical is re-read whenever the legs are straight; the signal is the
    # thighs' elevation above horizontal (0 = parallel, the depth the standard asks for).
    up = scratch.setdefault("up", rules.CAMERA_UP)
    knee = skel.pair_angle(rules.KNEE_L, rules.KNEE_R)
    hip = skel.pair_angle(rules.HIP_L, rules.HIP_R)
    if knee is not None and hip is not None and min(knee, hip) >= rules.STRAIGHT_LEG_DEG:
        up = rules.standing_axis(skel) or up
        scratch["up"] = up
    thigh: float | None = rules.thigh_elevation(skel, up)
    return thigh


SPECS: dict[str, Spec] = {
    "pushup-2": Spec(
        module="pushup2",
        name="elbow angle",
        unit="deg",
        description=(
            "The elbow angle in 3-D (the side the camera sees, the mean of both when it sees "
            "both), read while the body is in the push-up position: the signal the push-up "
            "rules find attempts in. A repetition is low enough when its smallest elbow angle "
            "is at or below the depth limit (else 311), locked out when it comes back above "
            "the lockout limit (else 312)."
        ),
        read=_pushup_elbow,
        lines=lambda th: [
            Line("depth_limit_deg", th.depth_limit_deg, "deepest elbow angle allowed (311)"),
            Line("lockout_limit_deg", th.lockout_limit_deg, "arms locked out above (312)"),
        ],
        judged_key="min_elbow_deg",
        extreme="min",
    ),
    "situp-2": Spec(
        module="situp2",
        name="hip angle",
        unit="deg",
        description=(
            "The hip angle (shoulder-hip-knee) in 3-D, the side the camera sees: the signal "
            "the sit-up rules find attempts in. A repetition is up enough when its smallest "
            "hip angle is at or below the up limit (else 321); it must start lying down, above "
            "the down limit (else 322)."
        ),
        read=_situp_hip,
        lines=lambda th: [
            Line("up_limit_deg", th.up_limit_deg, "sat up enough below (321)"),
            Line("down_limit_deg", th.down_limit_deg, "lying down above (322)"),
        ],
        judged_key="min_hip_deg",
        extreme="min",
    ),
    "pullup-2": Spec(
        module="pullup2",
        name="elbow angle",
        unit="deg",
        description=(
            "The elbow angle in 3-D while the hands are on the bar: the signal the pull-up "
            "rules find attempts in. Each pull must start from a straight-arm hang above the "
            "hang limit (else 332); the chin-over-bar check (331, mouth_over_grip) and "
            "kipping (333) are in the repetition's measurements."
        ),
        read=_pullup_elbow,
        lines=lambda th: [
            Line("hang_limit_deg", th.hang_limit_deg, "straight-arm hang above (332)"),
        ],
        judged_key="top_elbow_deg",
        extreme="min",
    ),
    "squat-2": Spec(
        module="squat2",
        name="thigh elevation above horizontal",
        unit="deg",
        description=(
            "How far the thighs (knees to hips, 3-D) rise above horizontal: 0 is parallel, "
            "90 standing; the squat rules find attempts in this signal (as 90 + elevation). "
            "A repetition is deep enough when the thighs come within the depth limit of "
            "parallel (else 341, unless the knee angle proves the depth)."
        ),
        read=_squat_thigh,
        lines=lambda th: [
            Line("depth_limit_deg", th.max_thigh_deg, "thighs at most this above parallel (341)"),
        ],
        judged_key="thigh_above_parallel_deg",
        extreme="min",
    ),
}


def measurement_series(events: Iterable[Event]) -> Series:
    """The deciding measurement of a stored session (its events, in order)."""
    from khfsm.exercises.common.world import read_skeleton

    prepared: SessionPrepared | None = None
    frames: list[FrameObserved] = []
    reps: list[RepCounted] = []
    for event in events:
        if isinstance(event, SessionPrepared):
            prepared = event
        elif isinstance(event, FrameObserved):
            frames.append(event)
        elif isinstance(event, RepCounted):
            reps.append(event)
    if prepared is None:
        return Series(False, reason="the session was never prepared")
    series = Series(
        True,
        task=prepared.task,
        rules_version=prepared.rules_version,
        level=prepared.level,
        fps=prepared.fps,
    )
    spec = SPECS.get(prepared.rules_version)
    if spec is None:
        series.available = False
        series.reason = f"no measurement plot for rules {prepared.rules_version}"
        return series
    rules = import_module(f"khfsm.exercises.{spec.module}")
    series.name, series.unit, series.description = spec.name, spec.unit, spec.description
    series.thresholds = [
        Line(line.name, round(line.value, 2), line.meaning)
        for line in spec.lines(rules.thresholds(prepared.level))
    ]
    scratch: dict[str, Any] = {}
    fps = prepared.fps or 1.0
    for observed in frames:
        skel = read_skeleton(observed.pose(), prepared.frame_width, prepared.frame_height)
        value = None if skel is None else spec.read(rules, prepared.level, scratch, skel)
        series.frames.append(observed.frame)
        series.times.append(round(observed.frame / fps, 3))
        series.values.append(None if value is None else round(value, 1))
    series.reps = [_judged(rep, spec, series) for rep in reps]
    return series


def _judged(rep: RepCounted, spec: Spec, series: Series) -> dict[str, Any]:
    """Where the plot marks a repetition: the frame of the curve's extreme within the
    repetition, at the value its verdict was judged on."""
    frame = _extreme_frame(series.frames, series.values, rep, spec.extreme)
    fps = series.fps or 1.0
    return {
        "index": rep.rep,
        "status": list(rep.status),
        "frame": frame,
        "time": round(frame / fps, 3),
        "key": spec.judged_key,
        "value": rep.measurements.get(spec.judged_key),
    }


def _extreme_frame(
    frames: Sequence[int], values: Sequence[float | None], rep: RepCounted, extreme: str
) -> int:
    best: tuple[float, int] | None = None
    sign = 1.0 if extreme == "min" else -1.0
    for frame, value in zip(frames, values, strict=True):
        if value is None or not rep.start_frame <= frame <= rep.end_frame:
            continue
        if best is None or sign * value < best[0]:
            best = (sign * value, frame)
    return best[1] if best is not None else rep.start_frame
