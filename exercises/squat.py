"""Squat (bodyweight) rules.

A repetition starts standing (knees extended), goes down until the thighs are at least
parallel to the floor and comes back up to standing. It is judged when the examinee stands
again, or, when they turn back down without standing up, at that turn (fault 342).

Signal: the knee angle (hip-knee-ankle) in the image, of the side the camera sees (both sides
averaged when it faces the examinee), median of 3 frames. Depth is judged on the smaller of
that angle and the same angle from the world landmarks (metres): facing the camera the thigh
is foreshortened and the image angle reads shallower than the knee really bends, while side on
the image angle is exact; the smaller of the two is right in both placements.

Torso lean: the angle of the hips->shoulders axis from vertical in world coordinates at the
deepest point of the repetition (fault 343 beyond the limit).

Unallowed motion (the test stops, status -3):
- `left_lane`: nobody in view for `absent_s` seconds after having been seen;
  `no_person`: nobody came into view at all for the no-show time (10 s at Level 5);
- `fell`: lying on the floor (shoulders-ankles axis near horizontal) for `down_s` seconds;
- `rested_down`: staying at the bottom for `bottom_rest_s` seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache

import numpy as np

from khfsm.domain.codes import fault_code
from khfsm.domain.exercise import RepJudged, RulesConfig, Verdict
from khfsm.domain.pose import Landmark as L
from khfsm.domain.pose import Pose

from .common.cycle import Cycle, CycleThresholds, Median3, Transition
from .common.geometry import KNEE_L, KNEE_R, Body, Triple, read_body, rnd
from .common.levels import per_level
from .common.rules import LYING_MIN_DEG, Presence, forbidden
from .common.timers import Streak

TASK = "squat"
RULES_VERSION = "squat-1"
CODE_DIGIT = 4  # X of its 3XY fault codes
PUSH_CODE = 5555  # prefixes its pushes when the tablet numbers its frames

NOT_DEEP_ENOUGH = fault_code(CODE_DIGIT, 1)  # 341
NOT_STOOD_UP = fault_code(CODE_DIGIT, 2)  # 342
LEANED_FORWARD = fault_code(CODE_DIGIT, 3)  # 343

FAULTS: Mapping[int, str] = {
    NOT_DEEP_ENOUGH: "not deep enough: thighs to parallel",
    NOT_STOOD_UP: "did not stand up fully between squats",
    LEANED_FORWARD: "leaned too far forward",
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    cycle: CycleThresholds  # knee angle, degrees; goal = depth limit
    max_lean_deg: float
    absent_s: float
    down_s: float
    bottom_rest_s: float


@cache
def thresholds(level: int) -> Thresholds:
    """Level 5 is the standard exam; each lower level is more lenient."""
    return Thresholds(
        cycle=CycleThresholds(
            rest=per_level(level, (140.0, 144.0, 148.0, 152.0, 155.0)),
            attempt=per_level(level, (130.0, 130.0, 135.0, 135.0, 135.0)),
            goal=per_level(level, (115.0, 110.0, 105.0, 100.0, 95.0)),
            rebound=35.0,
        ),
        max_lean_deg=per_level(level, (75.0, 72.0, 69.0, 66.0, 63.0)),
        absent_s=per_level(level, (6.0, 5.0, 4.0, 3.5, 3.0)),
        down_s=per_level(level, (3.0, 2.5, 2.0, 2.0, 1.5)),
        bottom_rest_s=per_level(level, (8.0, 7.0, 6.0, 5.0, 4.0)),
    )


@dataclass(frozen=True, slots=True)
class RepStats:
    min_depth: float = 360.0  # smallest knee angle (image or world) so far
    lean_at_depth: float = 0.0  # torso lean at that moment


@dataclass(frozen=True, slots=True)
class State:
    cycle: Cycle = field(default_factory=Cycle)
    knee: Median3 = field(default_factory=Median3)
    depth: Median3 = field(default_factory=Median3)
    rep: RepStats = field(default_factory=RepStats)
    presence: Presence = field(default_factory=Presence)
    down: Streak = field(default_factory=Streak)
    bottom: Streak = field(default_factory=Streak)


def _world_angle(world: list[list[float]], joints: Triple) -> float:
    a, b, c = (world[j] for j in joints)
    u = (a[0] - b[0], a[1] - b[1], a[2] - b[2])
    v = (c[0] - b[0], c[1] - b[1], c[2] - b[2])
    nu = math.sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2])
    nv = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if nu < 1e-6 or nv < 1e-6:
        return 180.0
    cos = (u[0] * v[0] + u[1] * v[1] + u[2] * v[2]) / (nu * nv)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def _world_lean(world: list[list[float]]) -> float:
    """Hips->shoulders axis from vertical (world y points down, like the image)."""
    sx = 0.5 * (world[L.LEFT_SHOULDER][0] + world[L.RIGHT_SHOULDER][0])
    sy = 0.5 * (world[L.LEFT_SHOULDER][1] + world[L.RIGHT_SHOULDER][1])
    sz = 0.5 * (world[L.LEFT_SHOULDER][2] + world[L.RIGHT_SHOULDER][2])
    hx = 0.5 * (world[L.LEFT_HIP][0] + world[L.RIGHT_HIP][0])
    hy = 0.5 * (world[L.LEFT_HIP][1] + world[L.RIGHT_HIP][1])
    hz = 0.5 * (world[L.LEFT_HIP][2] + world[L.RIGHT_HIP][2])
    dx, dy, dz = sx - hx, hy - sy, sz - hz
    return math.degrees(math.atan2(math.hypot(dx, dz), dy))


def _depth(body: Body, world: list[list[float]] | None, knee: float) -> float:
    if world is None:
        return knee
    vl = body.min_vis(KNEE_L)
    vr = body.min_vis(KNEE_R)
    if vl >= 0.5 and vr >= 0.5:
        w = 0.5 * (_world_angle(world, KNEE_L) + _world_angle(world, KNEE_R))
    else:
        w = _world_angle(world, KNEE_L if vl >= vr else KNEE_R)
    return min(knee, w)


def _world_rows(pose: Pose) -> list[list[float]] | None:
    world = pose.world
    if not np.any(world):  # a stream recorded without world landmarks
        return None
    rows: list[list[float]] = world.tolist()
    return rows


class Squat:
    task = TASK
    rules_version = RULES_VERSION
    faults = FAULTS
    code_digit = CODE_DIGIT
    push_code = PUSH_CODE

    def initial_state(self, config: RulesConfig) -> State:
        return State()

    def step(
        self, config: RulesConfig, state: State, frame: int, pose: Pose | None
    ) -> tuple[State, Sequence[Verdict]]:
        th = thresholds(config.level)
        fps = config.fps
        body = read_body(pose, config.frame_width, config.frame_height)

        presence, seen, gone = state.presence.observe(body, frame, config, th.absent_s)
        if gone is not None:
            return replace(state, presence=presence), [gone]
        if body is None or pose is None or not seen:
            return replace(state, presence=presence), ()

        # The shoulders-ankles axis: a deep squat leans the torso, not the whole body.
        torso = body.body_from_vertical()
        down = state.down.update(frame, torso >= LYING_MIN_DEG)
        if down.reached(frame, fps, th.down_s):
            return replace(state, presence=presence, down=down), [
                forbidden(frame, "fell", "fell or sat down on the floor", torso_deg=torso)
            ]

        verdicts: list[Verdict] = []
        cycle, rep, bottom = state.cycle, state.rep, state.bottom
        knee_f, depth_f = state.knee, state.depth
        knee_raw = body.side_angle(KNEE_L, KNEE_R)
        if knee_raw is not None:
            world = _world_rows(pose)
            knee_f, knee = knee_f.push(knee_raw)
            depth_f, depth = depth_f.push(_depth(body, world, knee_raw))
            previous = cycle
            cycle, transition = cycle.step(th.cycle, frame, knee, fps)
            if transition in (Transition.STARTED, Transition.ABANDONED):
                rep = RepStats()
            elif transition is Transition.ENDED_AT_REST:
                verdicts.append(_judge(th, previous, rep, frame, knee, stood=True))
                rep = RepStats()
            elif transition is Transition.ENDED_BY_REBOUND:
                verdicts.append(
                    _judge(th, previous, rep, previous.peak_frame, previous.peak, stood=False)
                )
                rep = RepStats()
            if cycle.active and depth < rep.min_depth:
                lean = _world_lean(world) if world is not None else torso
                rep = RepStats(depth, lean)
            bottom = bottom.update(frame, cycle.active and depth <= th.cycle.goal)
            if bottom.reached(frame, fps, th.bottom_rest_s):
                verdicts.append(
                    forbidden(
                        frame,
                        "rested_down",
                        "rested at the bottom of the squat",
                        bottom_s=bottom.seconds(frame, fps),
                        knee_deg=depth,
                    )
                )
        return State(
            cycle=cycle,
            knee=knee_f,
            depth=depth_f,
            rep=rep,
            presence=presence,
            down=down,
            bottom=bottom,
        ), verdicts

    def finish(self, config: RulesConfig, state: State, frame: int) -> Sequence[Verdict]:
        """A squat that went deep enough but had not stood up when the test ended is an
        attempt without standing up; a movement that never got deep is not judged."""
        c = state.cycle
        th = thresholds(config.level)
        if not c.active or state.rep.min_depth > th.cycle.goal:
            return ()
        return (_judge(th, c, state.rep, max(c.peak_frame, c.start), c.peak, stood=False),)


def _judge(
    th: Thresholds, c: Cycle, rep: RepStats, end: int, top: float, *, stood: bool
) -> RepJudged:
    codes: list[int] = []
    if rep.min_depth > th.cycle.goal:
        codes.append(NOT_DEEP_ENOUGH)
    if not stood:
        codes.append(NOT_STOOD_UP)
    if rep.lean_at_depth > th.max_lean_deg:
        codes.append(LEANED_FORWARD)
    return RepJudged(
        start_frame=c.start,
        end_frame=end,
        status=tuple(codes) or (0,),
        measurements={
            "min_knee_deg": rnd(rep.min_depth if rep.min_depth < 360.0 else c.extreme),
            "depth_limit_deg": th.cycle.goal,
            "top_knee_deg": rnd(top),
            "stand_limit_deg": th.cycle.rest,
            "lean_deg": rnd(rep.lean_at_depth),
            "lean_limit_deg": th.max_lean_deg,
        },
    )


EXERCISE = Squat()
