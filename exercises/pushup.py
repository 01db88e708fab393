"""Push-up rules.

A repetition starts with the arms locked out, goes down until the elbows are bent to at most
the depth threshold (upper arm about parallel to the floor) and comes back up to a lockout,
with the body kept straight throughout. It is judged when it is back at the lockout, or, when
the examinee turns back down without locking out, at that turn (fault 312).

Signal: the elbow angle (shoulder-elbow-wrist) of the side the camera sees, median of 3
frames. It is read only while the body is in the push-up position (shoulders-ankles axis
closer to horizontal than to vertical), so a person standing, kneeling up or a cut to another
shot is never counted.

Body line: the hip's signed deviation from the shoulder-ankle line, in degrees at the hip;
positive is a sag (the hip toward the floor, i.e. toward the hands' side of the line),
negative a pike. The worst value over the lower part of the repetition (elbow below the
attempt threshold) decides fault 313.

Unallowed motion (the test stops, status -3):
- `left_lane`: nobody in view for `absent_s` seconds after having been seen;
  `no_person`: nobody came into view at all for the no-show time (10 s at Level 5);
- `stood_up`: standing upright for `stand_s` seconds after having been in position;
- `knees_down`: in the push-up position with the knees bent (resting on the knees);
- `rested_down`: staying at the bottom (elbows bent past the depth threshold) for
  `bottom_rest_s` seconds: lying on the floor to rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache

from khfsm.domain.codes import fault_code
from khfsm.domain.exercise import RepJudged, RulesConfig, Verdict
from khfsm.domain.pose import Landmark as L
from khfsm.domain.pose import Pose

from .common.cycle import Cycle, CycleThresholds, Median3, Transition
from .common.geometry import (
    ELBOW_L,
    ELBOW_R,
    KNEE_L,
    KNEE_R,
    LINE_L,
    LINE_R,
    Body,
    Triple,
    read_body,
    rnd,
)
from .common.levels import per_level
from .common.rules import Presence, forbidden, is_standing
from .common.timers import Streak

TASK = "pushup"
RULES_VERSION = "pushup-1"
CODE_DIGIT = 1  # X of its 3XY fault codes
PUSH_CODE = 2222  # prefixes its pushes when the tablet numbers its frames

NOT_LOW_ENOUGH = fault_code(CODE_DIGIT, 1)  # 311
NOT_LOCKED_OUT = fault_code(CODE_DIGIT, 2)  # 312
BODY_NOT_STRAIGHT = fault_code(CODE_DIGIT, 3)  # 313

FAULTS: Mapping[int, str] = {
    NOT_LOW_ENOUGH: "not low enough: bend the elbows to 90 degrees",
    NOT_LOCKED_OUT: "arms not locked out at the top",
    BODY_NOT_STRAIGHT: "body not straight: hips sagging or piked",
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    cycle: CycleThresholds  # elbow angle, degrees
    max_sag_deg: float  # hip below the shoulder-ankle line
    max_pike_deg: float  # hip above it
    absent_s: float
    stand_s: float
    knees_bent_deg: float  # knee angle below this, in position, is kneeling
    knees_s: float
    bottom_rest_s: float


@cache
def thresholds(level: int) -> Thresholds:
    """Level 5 is the standard exam; each lower level is more lenient."""
    return Thresholds(
        cycle=CycleThresholds(
            rest=per_level(level, (130.0, 135.0, 140.0, 145.0, 150.0)),
            attempt=per_level(level, (115.0, 118.0, 120.0, 122.0, 125.0)),
            goal=per_level(level, (110.0, 105.0, 100.0, 95.0, 90.0)),
            rebound=35.0,
        ),
        max_sag_deg=per_level(level, (30.0, 27.0, 24.0, 21.0, 18.0)),
        max_pike_deg=per_level(level, (40.0, 36.0, 32.0, 28.0, 25.0)),
        absent_s=per_level(level, (6.0, 5.0, 4.0, 3.5, 3.0)),
        stand_s=per_level(level, (3.0, 2.5, 2.0, 2.0, 1.5)),
        knees_bent_deg=per_level(level, (100.0, 105.0, 110.0, 115.0, 120.0)),
        knees_s=per_level(level, (3.0, 2.5, 2.0, 2.0, 1.5)),
        bottom_rest_s=per_level(level, (8.0, 7.0, 6.0, 5.0, 4.0)),
    )


IN_POSITION_MIN_DEG = 50.0  # body axis at least this far from vertical: push-up position


@dataclass(frozen=True, slots=True)
class RepStats:
    """What the current attempt has shown so far (reset when an attempt begins)."""

    max_sag: float = -180.0
    max_pike: float = -180.0


@dataclass(frozen=True, slots=True)
class State:
    cycle: Cycle = field(default_factory=Cycle)
    elbow: Median3 = field(default_factory=Median3)
    line: Median3 = field(default_factory=Median3)
    rep: RepStats = field(default_factory=RepStats)
    presence: Presence = field(default_factory=Presence)
    standing: Streak = field(default_factory=Streak)
    kneeling: Streak = field(default_factory=Streak)
    bottom: Streak = field(default_factory=Streak)
    was_in_position: bool = False


def body_line_deg(body: Body, line: Triple) -> float:
    """Signed deviation of the hip from the shoulder-ankle line (degrees; + sag, - pike)."""
    s, h, a = line
    x, y = body.x, body.y
    deviation = 180.0 - body.angle(line)
    ax, ay = x[a] - x[s], y[a] - y[s]
    side_hip = ax * (y[h] - y[s]) - ay * (x[h] - x[s])
    # The floor is on the hands' side of the line; without a seen wrist, image "down".
    wrist = L.LEFT_WRIST if s == L.LEFT_SHOULDER else L.RIGHT_WRIST
    if body.vis[wrist] >= 0.3:
        side_floor = ax * (y[wrist] - y[s]) - ay * (x[wrist] - x[s])
    else:
        side_floor = ax * 1.0  # cross((ax, ay), (0, 1)): a point straight below the shoulder
    if side_floor == 0.0:
        return deviation
    return deviation if (side_hip >= 0.0) == (side_floor >= 0.0) else -deviation


def _line_side(body: Body) -> Triple | None:
    vl = body.min_vis(LINE_L)
    vr = body.min_vis(LINE_R)
    if max(vl, vr) < 0.5:
        return None
    return LINE_L if vl >= vr else LINE_R


class Pushup:
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
        verdicts: list[Verdict] = []

        presence, seen, gone = state.presence.observe(body, frame, config, th.absent_s)
        if gone is not None:
            return replace(state, presence=presence), [gone]
        if body is None or not seen:
            return replace(state, presence=presence), ()

        torso = body.body_from_vertical()
        in_position = torso >= IN_POSITION_MIN_DEG
        standing = state.standing.update(
            frame, is_standing(body) if state.was_in_position else False
        )
        if standing.reached(frame, fps, th.stand_s):
            return replace(state, presence=presence, standing=standing), [
                forbidden(
                    frame,
                    "stood_up",
                    "stood up during the push-ups",
                    standing_s=standing.seconds(frame, fps),
                    torso_deg=torso,
                )
            ]

        knee = body.side_angle(KNEE_L, KNEE_R, min_vis=0.5, floor=0.5)
        kneeling = state.kneeling.update(
            frame, None if knee is None or not in_position else knee < th.knees_bent_deg
        )
        if kneeling.reached(frame, fps, th.knees_s):
            return replace(state, presence=presence, standing=standing, kneeling=kneeling), [
                forbidden(
                    frame,
                    "knees_down",
                    "rested on the knees",
                    knee_deg=knee if knee is not None else -1.0,
                    knee_limit_deg=th.knees_bent_deg,
                )
            ]

        cycle, rep = state.cycle, state.rep
        elbow_f, line_f = state.elbow, state.line
        bottom = state.bottom
        elbow_raw = body.side_angle(ELBOW_L, ELBOW_R) if in_position else None
        if elbow_raw is not None:
            elbow_f, elbow = elbow_f.push(elbow_raw)
            side = _line_side(body)
            sag = None
            if side is not None:
                line_f, sag = line_f.push(body_line_deg(body, side))
            previous = cycle
            cycle, transition = cycle.step(th.cycle, frame, elbow, fps)
            if transition in (Transition.STARTED, Transition.ABANDONED):
                rep = RepStats()
            elif transition is Transition.ENDED_AT_REST:
                verdicts.append(self._judge(th, previous, rep, frame, elbow, locked=True))
                rep = RepStats()
            elif transition is Transition.ENDED_BY_REBOUND:
                verdicts.append(
                    self._judge(th, previous, rep, previous.peak_frame, previous.peak, locked=False)
                )
                rep = RepStats()
            # The body line is judged in the lower part of the movement, where a sag shows
            # (and away from the top, where a cut or re-detection leaves transient keypoints).
            if cycle.active and sag is not None and elbow < th.cycle.attempt:
                rep = RepStats(max(rep.max_sag, sag), max(rep.max_pike, -sag))
            bottom = bottom.update(frame, cycle.active and elbow <= th.cycle.goal)
            if bottom.reached(frame, fps, th.bottom_rest_s):
                verdicts.append(
                    forbidden(
                        frame,
                        "rested_down",
                        "rested at the bottom (lying on the floor)",
                        bottom_s=bottom.seconds(frame, fps),
                        elbow_deg=elbow,
                    )
                )
        new_state = State(
            cycle=cycle,
            elbow=elbow_f,
            line=line_f,
            rep=rep,
            presence=presence,
            standing=standing,
            kneeling=kneeling,
            bottom=bottom,
            was_in_position=state.was_in_position or in_position,
        )
        return new_state, verdicts

    def finish(self, config: RulesConfig, state: State, frame: int) -> Sequence[Verdict]:
        """A push-up that reached the bottom but not the lockout when the test ended is an
        attempt without lockout; a movement that never got low enough is not judged."""
        c = state.cycle
        if not c.active or c.goal_frame < 0:
            return ()
        th = thresholds(config.level)
        return (self._judge(th, c, state.rep, max(c.peak_frame, c.start), c.peak, locked=False),)

    def _judge(
        self, th: Thresholds, c: Cycle, rep: RepStats, end: int, top: float, *, locked: bool
    ) -> RepJudged:
        codes: list[int] = []
        if c.goal_frame < 0:
            codes.append(NOT_LOW_ENOUGH)
        if not locked:
            codes.append(NOT_LOCKED_OUT)
        if rep.max_sag > th.max_sag_deg or rep.max_pike > th.max_pike_deg:
            codes.append(BODY_NOT_STRAIGHT)
        return RepJudged(
            start_frame=c.start,
            end_frame=end,
            status=tuple(codes) or (0,),
            measurements={
                "min_elbow_deg": rnd(c.extreme),
                "depth_limit_deg": th.cycle.goal,
                "top_elbow_deg": rnd(top),
                "lockout_limit_deg": th.cycle.rest,
                "max_sag_deg": rnd(max(rep.max_sag, 0.0)),
                "sag_limit_deg": th.max_sag_deg,
                "max_pike_deg": rnd(max(rep.max_pike, 0.0)),
                "pike_limit_deg": th.max_pike_deg,
            },
        )


EXERCISE = Pushup()
