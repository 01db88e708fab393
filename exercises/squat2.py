"""Squat (bodyweight) rules, version 2: find every squat, then judge it against the standard.

The standard: from standing, go down until the thighs are at least parallel to the floor,
come back up to standing with the knees straight, without leaning the back too far forward.

Finding (`exercises/common/attempts.py`): the signal is the thighs' angle to the vertical,
in 3-D (the same from the front, the side, behind or at 45 degrees, where the image angle
of a thigh pointing at the camera reads far too open): `thigh_signal` = 90 + the thighs'
elevation above horizontal, so 180 standing (thighs vertical), 90 at parallel. It needs
only the hips and knees: a close camera often loses the ankles at the bottom of a squat,
which a knee angle cannot survive. Every lowering-and-rising of the thighs by more than the
examinee's own hysteresis is an attempt, half squats included: those are judged with 341.

"Vertical" is the examinee's own standing axis (ankles to hips, seen when last standing
straight): a standing body keeps its centre of mass over the feet, so that axis is the
vertical whatever the camera's height or tilt; the camera's "up" is used until the
examinee has been seen standing, and again after a cut (the world axes are the camera's).

Judging, when the attempt is over (back up, or turned down again without standing); every
attempt is one verdict, pushed at once:
- 341 not deep enough: the thighs (hip to knee, 3-D) stayed more than `max_thigh_deg`
  above the horizontal (the plane square to that vertical), and the knee angle never
  closed enough to prove otherwise (`MAX_SHIN_TILT_DEG`);
- 342 did not stand up: before the next squat (or the end of the test) the thighs did not
  come back to within `stand_tolerance_deg` of vertical (hips and knees extended);
- 343 leaned too far forward: the torso (hips to shoulders) was more than `max_lean_deg`
  from that vertical at the deepest point.

Known limit: seen from straight in front, the thighs point at the camera and the pose model
under-reads that depth (by up to ~40 %), so they read steeper than they are: a half squat
can shrink below `MIN_SQUAT_DEG` (not found) and a squat just at parallel can read ~10 deg
short (341). A side or 45-degree camera does not have this problem.

Unallowed motion (the test stops, status -3):
- `left_lane` / `no_person`: as every exercise (`rules.Presence`);
- `fell`: the whole body (ankles to shoulders, 3-D, against the calibrated vertical) near
  horizontal for `down_s` seconds.
Version 1's `rested_down` (staying at the bottom) is not kept: holding the bottom is not a
fault in the squat standard, and the test's time limit already ends a test that stalls.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache

from khfsm.domain.codes import fault_code
from khfsm.domain.exercise import RulesConfig, Verdict
from khfsm.domain.pose import Landmark as L
from khfsm.domain.pose import Pose

from .common.attempts import Attempt, AttemptDetector, AttemptSpec, Phase
from .common.geometry import HIP_L, HIP_R, KNEE_L, KNEE_R
from .common.judging import Check, Readiness, verdict
from .common.levels import per_level
from .common.rules import LYING_MIN_DEG, Presence, forbidden, present
from .common.timers import Streak
from .common.world import (
    FLOOR,
    SEEN,
    STRAIGHT_LEG_DEG,
    Skeleton,
    Vec,
    ViewVote,
    read_skeleton,
)

TASK = "squat"
RULES_VERSION = "squat-2"
CODE_DIGIT = 4
PUSH_CODE = 5555

NOT_DEEP_ENOUGH = fault_code(CODE_DIGIT, 1)  # 341
NOT_STOOD_UP = fault_code(CODE_DIGIT, 2)  # 342
LEANED_FORWARD = fault_code(CODE_DIGIT, 3)  # 343

FAULTS: Mapping[int, str] = {
    NOT_DEEP_ENOUGH: "not deep enough: thighs to parallel",
    NOT_STOOD_UP: "did not stand up fully between squats",
    LEANED_FORWARD: "leaned too far forward",
}

# Finding (the same at every level). A quarter squat, the shallowest movement any standard
# calls a squat, tilts the thighs ~45 deg from vertical; 40 deg is just under it, and well
# over the thighs' tilt when bending down with the legs nearly straight to pick something
# up (a hinge) or the 3-D angle's frame-to-frame noise.
MIN_SQUAT_DEG = 40.0
# With the heels down the ankle bends the shin at most ~40 deg forward of vertical (the
# normal range of weight-bearing dorsiflexion is ~20-40 deg). The knee angle is then
# 90 - shin tilt + thigh elevation, so a knee closed to `50 + limit` deg proves the thighs got
# within `limit` of parallel whatever the shin did: a second, independent measurement of
# depth, used when the thigh direction alone reads short (the 3-D model's thigh direction
# is the noisier of the two when the thigh points at the camera).
MAX_SHIN_TILT_DEG = 40.0
# thigh_signal = this + elevation: 180 thighs vertical, 90 parallel (decreasing toward the
# goal, as the detector expects).
THIGH_SIGNAL_OFFSET = 90.0
# The camera's "up" in world coordinates (y grows downward), until the examinee is seen
# standing.
CAMERA_UP: Vec = (0.0, -1.0, 0.0)


@dataclass(frozen=True, slots=True)
class Thresholds:
    stand_tolerance_deg: float  # thighs within this of vertical: standing up
    max_thigh_deg: float  # thigh at most this far above horizontal: parallel
    max_lean_deg: float  # torso at most this far from vertical at the bottom
    absent_s: float
    no_show_s: float
    down_s: float

    @property
    def stand_limit_deg(self) -> float:
        """`thigh_signal` from which the examinee is standing up."""
        return 180.0 - self.stand_tolerance_deg


@cache
def thresholds(level: int) -> Thresholds:
    """Level 5 is the standard exam; each lower level is more lenient.

    - standing: standing up, the hips are extended and the thighs vertical (a balanced
      body cannot have vertical thighs over bent knees: the shins would tilt back behind
      the feet); a judge cannot see a tilt under ~10 deg and the pose model's 3-D limb
      direction is off by up to ~10 deg, so the thighs must come back to within 20 deg of
      vertical at Level 5, a few degrees more at each level below.
    - parallel: the standard's "top of the thigh parallel" is met with the hip joint
      centre (the landmark) still ~5-7 cm above the knee joint centre, because the thigh
      tapers from ~16 cm thick at the hip to ~10 cm at the knee; over a ~42 cm thigh that
      is ~10 deg, the Level 5 limit; each level below allows 5 deg more.
    - lean: a parallel squat with the heels down needs a trunk lean of ~30-50 deg
      (femur/torso proportions); version 1's per-level limits (63 deg at Level 5, where a
      squat becomes a good-morning) are kept.
    """
    return Thresholds(
        stand_tolerance_deg=per_level(level, (32.0, 29.0, 26.0, 23.0, 20.0)),
        max_thigh_deg=per_level(level, (30.0, 25.0, 20.0, 15.0, 10.0)),
        max_lean_deg=per_level(level, (75.0, 72.0, 69.0, 66.0, 63.0)),
        # An empty lane ends the test only after `absent_s` (nobody coming at all: after
        # `no_show_s`): a person who has really gone makes no further attempts, so a late
        # stop costs nothing, while an early one on a pose-model dropout (backlight, a
        # proctor walking through, a cut) ends a valid exam; pushup-2's values.
        absent_s=per_level(level, (15.0, 14.0, 12.0, 11.0, 10.0)),
        no_show_s=per_level(level, (30.0, 27.0, 24.0, 22.0, 20.0)),
        down_s=per_level(level, (3.0, 2.5, 2.0, 2.0, 1.5)),
    )


@cache
def attempt_spec(level: int) -> AttemptSpec:
    """The detector's settings: `complete_at` is the standard's standing, so a squat ends
    at once when the examinee stands; one that turns down again early is still found."""
    return AttemptSpec(min_excursion=MIN_SQUAT_DEG, complete_at=thresholds(level).stand_limit_deg)


@dataclass(frozen=True, slots=True)
class RepStats:
    min_thigh: float | None = None  # lowest thigh elevation above horizontal, degrees
    lean_at_depth: float = 0.0  # torso from vertical at that moment
    min_knee: float | None = None  # smallest 3-D knee angle (None: ankles never seen)


@dataclass(frozen=True, slots=True)
class State:
    detector: AttemptDetector = field(default_factory=AttemptDetector)
    rep: RepStats = field(default_factory=RepStats)
    up: Vec = CAMERA_UP
    views: ViewVote = field(default_factory=ViewVote)
    presence: Presence = field(default_factory=Presence)
    down: Streak = field(default_factory=Streak)


def _sub(a: Vec, b: Vec) -> Vec:
    return a[0] - b[0], a[1] - b[1], a[2] - b[2]


def _unit(v: Vec) -> Vec | None:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if not n > 1e-6:  # also catches NaN
        return None
    return v[0] / n, v[1] / n, v[2] / n


def elevation_deg(v: Vec, up: Vec) -> float | None:
    """Angle of `v` above the plane square to `up`, degrees (negative: below it)."""
    u = _unit(v)
    if u is None:
        return None
    dot = u[0] * up[0] + u[1] * up[1] + u[2] * up[2]
    return math.degrees(math.asin(max(-1.0, min(1.0, dot))))


def standing_axis(sk: Skeleton) -> Vec | None:
    """Mid-ankles to mid-hips, as a unit vector: the vertical while standing straight."""
    return _unit(_sub(sk.mid(L.LEFT_HIP, L.RIGHT_HIP), sk.mid(L.LEFT_ANKLE, L.RIGHT_ANKLE)))


def thigh_elevation(sk: Skeleton, up: Vec) -> float | None:
    """How far the thighs (knees to hips) rise above horizontal, degrees: 0 parallel,
    negative below parallel; None when neither thigh is seen. The two thighs are averaged
    in 3-D (mid-knees to mid-hips): their sideways splay in a wide stance cancels, and in a
    side view the hidden thigh, placed by the model from the rest of the body, moves with the
    seen one (both legs squat together)."""
    vis = sk.image.vis
    if (
        max(min(vis[L.LEFT_HIP], vis[L.LEFT_KNEE]), min(vis[L.RIGHT_HIP], vis[L.RIGHT_KNEE]))
        < FLOOR
    ):
        return None
    return elevation_deg(
        _sub(sk.mid(L.LEFT_HIP, L.RIGHT_HIP), sk.mid(L.LEFT_KNEE, L.RIGHT_KNEE)), up
    )


def torso_lean(sk: Skeleton, up: Vec) -> float:
    """Hips-to-shoulders axis from the vertical `up`, degrees (0 upright)."""
    axis = _sub(sk.mid(L.LEFT_SHOULDER, L.RIGHT_SHOULDER), sk.mid(L.LEFT_HIP, L.RIGHT_HIP))
    elevation = elevation_deg(axis, up)
    return 0.0 if elevation is None else 90.0 - elevation


def body_from_vertical(sk: Skeleton, up: Vec) -> float:
    """Ankles-to-shoulders axis from the vertical `up`, degrees (0 upright, 90 lying)."""
    axis = _sub(sk.mid(L.LEFT_SHOULDER, L.RIGHT_SHOULDER), sk.mid(L.LEFT_ANKLE, L.RIGHT_ANKLE))
    elevation = elevation_deg(axis, up)
    return 0.0 if elevation is None else 90.0 - elevation


def start_position(pose: Pose | None, width: int = 0, height: int = 0, level: int = 5) -> Readiness:
    """Is the examinee standing straight with the legs in view (the start position), and if
    not, what is missing. Pure: the server asks it at `prepare` and `start`."""
    sk = read_skeleton(pose, width, height)
    if sk is None or not present(sk.image):
        return Readiness(False, ("no person in view",))
    view = sk.view()
    missing: list[str] = []
    vis = sk.image.vis
    for name, pair in (
        ("hips", (L.LEFT_HIP, L.RIGHT_HIP)),
        ("knees", (L.LEFT_KNEE, L.RIGHT_KNEE)),
        ("ankles", (L.LEFT_ANKLE, L.RIGHT_ANKLE)),
    ):
        if max(vis[p] for p in pair) < SEEN:
            missing.append(f"{name} not in view")
    if not missing:
        knee = sk.pair_angle(KNEE_L, KNEE_R)
        hip = sk.pair_angle(HIP_L, HIP_R)
        if knee is None or hip is None or min(knee, hip) < STRAIGHT_LEG_DEG:
            missing.append("not standing straight")
    return Readiness(not missing, tuple(missing), view)


class Squat:
    task = TASK
    rules_version = RULES_VERSION
    faults = FAULTS
    code_digit = CODE_DIGIT
    push_code = PUSH_CODE

    def initial_state(self, config: RulesConfig) -> State:
        return State()

    # Readiness at prepare/start: the module's `start_position` (the module function itself).
    start_position = staticmethod(start_position)

    def step(
        self, config: RulesConfig, state: State, frame: int, pose: Pose | None
    ) -> tuple[State, Sequence[Verdict]]:
        th = thresholds(config.level)
        spec = attempt_spec(config.level)
        fps = config.fps
        sk = read_skeleton(pose, config.frame_width, config.frame_height)

        seen = sk is not None and present(sk.image)
        presence, gone = state.presence.update(frame, fps, seen, th.absent_s, th.no_show_s)
        if gone is not None:
            return replace(state, presence=presence), [gone]
        if sk is None or not seen:
            detector, events = state.detector.step(spec, frame, None, fps)
            return replace(
                state,
                detector=detector,
                rep=RepStats() if events.abandoned else state.rep,
                presence=presence,
            ), ()

        knee = sk.pair_angle(KNEE_L, KNEE_R)
        hip = sk.pair_angle(HIP_L, HIP_R)
        up = state.up
        if knee is not None and hip is not None and min(knee, hip) >= STRAIGHT_LEG_DEG:
            up = standing_axis(sk) or up

        body_deg = body_from_vertical(sk, up)
        down = state.down.update(frame, body_deg >= LYING_MIN_DEG)
        if down.reached(frame, fps, th.down_s):
            return replace(state, presence=presence, down=down), [
                forbidden(frame, "fell", "fell or sat down on the floor", body_deg=body_deg)
            ]
        thigh = thigh_elevation(sk, up)
        signal = thigh_signal(thigh)
        detector, events = state.detector.step(spec, frame, signal, fps)
        rep, views = state.rep, state.views
        verdicts: list[Verdict] = []
        if events.ended is not None:
            verdicts.append(judge(th, events.ended, rep, views))
            rep = RepStats()
        if events.abandoned:
            # Lost mid-squat, or a cut: the world axes may now be another camera's.
            rep, up = RepStats(), CAMERA_UP
        elif events.started:
            rep = RepStats()
        if thigh is not None:
            views = views.add(sk.view())
            if detector.in_attempt and (rep.min_thigh is None or thigh < rep.min_thigh):
                rep = replace(rep, min_thigh=thigh, lean_at_depth=torso_lean(sk, up))
            if detector.in_attempt and knee is not None and knee < (rep.min_knee or 360.0):
                rep = replace(rep, min_knee=knee)
        return State(
            detector=detector,
            rep=rep,
            up=up,
            views=views,
            presence=presence,
            down=down,
        ), verdicts

    def finish(self, config: RulesConfig, state: State, frame: int) -> Sequence[Verdict]:
        """A squat on its way back up when the test ends (past its bottom) is an attempt
        that did not stand up; one still going down was cut by the time, not judged."""
        current = state.detector.current(attempt_spec(config.level))
        if current is None or state.detector.phase is not Phase.UP:
            return ()
        return (judge(thresholds(config.level), current, state.rep, state.views),)


def thigh_signal(thigh: float | None) -> float | None:
    """The detector's signal: 180 thighs vertical (standing), 90 parallel."""
    return None if thigh is None else THIGH_SIGNAL_OFFSET + thigh


def judge(th: Thresholds, attempt: Attempt, rep: RepStats, views: ViewVote) -> Verdict:
    """One attempt against the standard: status (0,) or its faults, with the measurements.
    Stood up: the thighs came back to vertical (the detector ended the attempt complete)."""
    thigh = attempt.bottom - THIGH_SIGNAL_OFFSET
    knee_limit = 90.0 - MAX_SHIN_TILT_DEG + th.max_thigh_deg
    knee = rep.min_knee
    checks = (
        Check(
            NOT_DEEP_ENOUGH,
            thigh <= th.max_thigh_deg or (knee is not None and knee <= knee_limit),
            {
                "thigh_above_parallel_deg": thigh,
                "depth_limit_deg": th.max_thigh_deg,
                "min_knee_deg": -1.0 if knee is None else knee,
                "knee_depth_limit_deg": knee_limit,
            },
        ),
        Check(
            NOT_STOOD_UP,
            attempt.complete,
            {
                "top_thigh_from_vertical_deg": 180.0 - attempt.end,
                "stand_limit_deg": th.stand_tolerance_deg,
            },
        ),
        Check(
            LEANED_FORWARD,
            rep.lean_at_depth <= th.max_lean_deg,
            {"lean_deg": rep.lean_at_depth, "lean_limit_deg": th.max_lean_deg},
        ),
    )
    return verdict(attempt, checks, view=views.view)


EXERCISE = Squat()
