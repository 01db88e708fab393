"""Push-up rules, version 2: find every attempt in 3-D, then judge it against the standard.

The standard: from a plank with the arms locked, lower the body until the elbows are bent to
90 deg (upper arms parallel to the floor), push back up to locked arms, the body straight
from shoulders to ankles throughout.

Finding attempts (`exercises.common.attempts`): the signal is the elbow angle measured in
3-D (`exercises.common.world`; the side the camera sees, the mean when it sees both), read
only while the body is in the push-up position, i.e. the shoulders-ankles axis closer to
horizontal than to vertical (`IN_POSITION_MIN_DEG`, 3-D: a front camera, an incline on a
bench or a tilted phone all read as in position, a standing or kneeling-up person does not).
Every down-and-up of at least `MIN_EXCURSION_DEG` (relative to this examinee's own range) is
an attempt, however shallow, and is judged the moment it is back at lockout, turns back down
without locking out, or stops short of the lockout.

Judging (`exercises.common.judging`), every limit from the standard plus the pose model's
measured 3-D bias, per level (5 = the standard exam; lower levels more lenient):
- 311 not low enough: the attempt's smallest elbow angle > `depth_limit_deg`.
- 312 arms not locked out: the attempt ended short of `lockout_limit_deg`.
- 313 body not straight: the hip off the shoulder-ankle line (3-D) by more than
  `max_sag_deg` (toward the floor) or `max_pike_deg` (away), or the knees bent below
  `min_knee_deg` (a push-up from the knees), at any moment of the attempt.

The camera view (side / front-back / oblique, by `ViewVote`) is recorded in every verdict's
measurements as `camera_view` (`exercises.common.world.View`).

Unallowed motion (the test stops, status -3), only the rules that no camera angle can fake:
- `left_lane`: nobody in view for `absent_s` seconds (10 at Level 5) after having been
  seen; `no_person`: nobody came into view at all for `no_show_s` (20 at Level 5);
- `stood_up`: standing upright (3-D torso and legs) for `stand_s` seconds once the test is
  under way (after the first attempt: before it, standing is getting ready).
(`*-1`'s `knees_down` and `rested_down` stopped complete sessions on silhouettes and front
views; a push-up from the knees is now fault 313 on that attempt, and resting at the bottom
simply produces no further attempts.)

`start_position(pose, width, height, level)` says whether a pose is the start position and
what is missing (for readiness at prepare/start).
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

from .common.attempts import Attempt, AttemptDetector, AttemptSpec
from .common.cycle import Median3
from .common.geometry import ELBOW_L, ELBOW_R, KNEE_L, KNEE_R, rnd
from .common.judging import Check, Readiness, verdict
from .common.levels import per_level
from .common.rules import Presence, forbidden, present
from .common.timers import Streak
from .common.world import Skeleton, ViewVote, is_standing, read_skeleton

TASK = "pushup"
RULES_VERSION = "pushup-2"
CODE_DIGIT = 1
PUSH_CODE = 2222

NOT_LOW_ENOUGH = fault_code(CODE_DIGIT, 1)  # 311
NOT_LOCKED_OUT = fault_code(CODE_DIGIT, 2)  # 312
BODY_NOT_STRAIGHT = fault_code(CODE_DIGIT, 3)  # 313

FAULTS: Mapping[int, str] = {
    NOT_LOW_ENOUGH: "not low enough: bend the elbows to 90 degrees",
    NOT_LOCKED_OUT: "arms not locked out at the top",
    BODY_NOT_STRAIGHT: "body not straight: hips sagging or piked, or on the knees",
}

# Half-way between upright (0) and level (90): standing or kneeling up reads < 35 deg, a
# plank 70-90, an incline push-up with the hands on a 60 cm box ~55.
IN_POSITION_MIN_DEG = 45.0
# The smallest elbow movement that is an attempt: a quarter of the standard's 90 deg of
# elbow travel (lockout 180 -> 90), well above the ~5 deg frame-to-frame jitter of a 3-D
# joint angle after the median filter; hand repositioning and breathing stay below it.
MIN_EXCURSION_DEG = 20.0
# The pose model's 3-D elbow angle reads less bent than the image angle at flexion and a
# little less straight at extension. Measured on side views, where the image-plane angle of
# the near arm is faithful (median of per-frame world - image differences, all clips pooled,
# see benchmarks/elbow_bias.py: +15.2 flexed, -9.8 extended; leaving any one clip out gives
# +13.8..+16.4 and -10.9..-8.4, so the values rounded to 5 deg below never move):
ELBOW_BIAS_FLEXED_DEG = 15.0
ELBOW_BIAS_EXTENDED_DEG = -10.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    spec: AttemptSpec  # elbow angle, degrees (3-D)
    depth_limit_deg: float
    lockout_limit_deg: float
    max_sag_deg: float
    max_pike_deg: float
    min_knee_deg: float
    absent_s: float
    no_show_s: float
    stand_s: float


@cache
def thresholds(level: int) -> Thresholds:
    """Level 5 is the standard exam; each lower level is more lenient."""
    # Standard depth 90 deg at Level 5, 20 deg more lenient at Level 1; read in 3-D.
    depth = per_level(level, (110.0, 105.0, 100.0, 95.0, 90.0)) + ELBOW_BIAS_FLEXED_DEG
    # Locked arms: a straight arm's keypoints read 165-180 deg in the image (the wrist and
    # elbow points sit off the bone axis); 150 at Level 5 leaves 15-30 deg for that, 130 at
    # Level 1; read in 3-D.
    lockout = per_level(level, (130.0, 135.0, 140.0, 145.0, 150.0)) + ELBOW_BIAS_EXTENDED_DEG
    return Thresholds(
        spec=AttemptSpec(min_excursion=MIN_EXCURSION_DEG, complete_at=lockout),
        depth_limit_deg=depth,
        lockout_limit_deg=lockout,
        # The hip off the shoulder-ankle line: for an adult (torso ~0.5 m, legs ~0.9 m) an
        # angle d at the hip puts the hip ~0.32 m x d (rad) off the line, so 18 deg is ~10 cm
        # (a hand's width, a visible sag) and 25 deg ~14 cm of pike at Level 5.
        max_sag_deg=per_level(level, (30.0, 27.0, 24.0, 21.0, 18.0)),
        max_pike_deg=per_level(level, (40.0, 36.0, 32.0, 28.0, 25.0)),
        # On the knees the knee is bent ~90 deg; a plank holds it straight (> 160). 120 at
        # Level 5 (60 deg of flexion), 100 at Level 1.
        min_knee_deg=per_level(level, (100.0, 105.0, 110.0, 115.0, 120.0)),
        # An empty lane ends the test only after `absent_s` (and nobody coming at all after
        # `no_show_s`): a person who has really gone makes no further attempts, so a late stop
        # costs nothing, while an early one on a pose-model dropout (backlight, a proctor
        # walking through, a cut) ends a valid exam. 10 s at Level 5 is several repetition
        # cycles.
        absent_s=per_level(level, (15.0, 14.0, 12.0, 11.0, 10.0)),
        no_show_s=per_level(level, (30.0, 27.0, 24.0, 22.0, 20.0)),
        stand_s=per_level(level, (3.0, 2.5, 2.0, 2.0, 1.5)),
    )


@dataclass(frozen=True, slots=True)
class RepStats:
    """The worst body line seen during the current attempt."""

    max_sag: float = 0.0
    max_pike: float = 0.0
    min_knee: float = 180.0


@dataclass(frozen=True, slots=True)
class State:
    detector: AttemptDetector = field(default_factory=AttemptDetector)
    line: Median3 = field(default_factory=Median3)
    rep: RepStats = field(default_factory=RepStats)
    views: ViewVote = field(default_factory=ViewVote)
    presence: Presence = field(default_factory=Presence)
    standing: Streak = field(default_factory=Streak)
    started: bool = False  # a first attempt has been made


def body_axis_from_vertical(skel: Skeleton) -> float:
    """Shoulders->ankles axis from vertical (3-D); the torso's when no ankle is seen."""
    if skel.seen(L.LEFT_ANKLE) or skel.seen(L.RIGHT_ANKLE):
        return skel.body_from_vertical()
    return skel.torso_from_vertical()


def body_line_deg(skel: Skeleton) -> float | None:
    """Signed deviation of the hip from the shoulder-ankle line in 3-D, degrees at the hip:
    + sag (the hip toward the floor, world +y), - pike. Midpoints of the left/right pairs;
    the knees stand in for the ankles when no ankle is seen; None without hips or either."""
    if not (skel.seen(L.LEFT_HIP) or skel.seen(L.RIGHT_HIP)):
        return None
    if skel.seen(L.LEFT_ANKLE) or skel.seen(L.RIGHT_ANKLE):
        far = skel.mid(L.LEFT_ANKLE, L.RIGHT_ANKLE)
    elif skel.seen(L.LEFT_KNEE) or skel.seen(L.RIGHT_KNEE):
        far = skel.mid(L.LEFT_KNEE, L.RIGHT_KNEE)
    else:
        return None
    s = skel.mid(L.LEFT_SHOULDER, L.RIGHT_SHOULDER)
    h = skel.mid(L.LEFT_HIP, L.RIGHT_HIP)
    ax, ay, az = far[0] - s[0], far[1] - s[1], far[2] - s[2]
    hx, hy, hz = h[0] - s[0], h[1] - s[1], h[2] - s[2]
    n2 = ax * ax + ay * ay + az * az
    if not n2 > 1e-6:
        return None
    t = (hx * ax + hy * ay + hz * az) / n2
    oy = hy - t * ay  # the vertical part of the hip's offset from the line
    u = (s[0] - h[0], s[1] - h[1], s[2] - h[2])
    v = (far[0] - h[0], far[1] - h[1], far[2] - h[2])
    nu = math.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2)
    nv = math.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2)
    if not (nu > 1e-6 and nv > 1e-6):
        return None
    cos = (u[0] * v[0] + u[1] * v[1] + u[2] * v[2]) / (nu * nv)
    deviation = 180.0 - math.degrees(math.acos(max(-1.0, min(1.0, cos))))
    return deviation if oy >= 0.0 else -deviation


def start_position(pose: Pose | None, width: int = 0, height: int = 0, level: int = 5) -> Readiness:
    """Is this pose the push-up start position (plank, arms locked), and if not, why not."""
    skel = read_skeleton(pose, width, height)
    if skel is None or not present(skel.image):
        return Readiness(False, ("no person in view",))
    th = thresholds(level)
    missing: list[str] = []
    for name, pair in (
        ("shoulders", (L.LEFT_SHOULDER, L.RIGHT_SHOULDER)),
        ("elbows", (L.LEFT_ELBOW, L.RIGHT_ELBOW)),
        ("wrists", (L.LEFT_WRIST, L.RIGHT_WRIST)),
        ("hips", (L.LEFT_HIP, L.RIGHT_HIP)),
        ("ankles", (L.LEFT_ANKLE, L.RIGHT_ANKLE)),
    ):
        if not (skel.seen(pair[0]) or skel.seen(pair[1])):
            missing.append(f"{name} not in view")
    if body_axis_from_vertical(skel) < IN_POSITION_MIN_DEG:
        missing.append("not in the push-up position (body not horizontal)")
    elbow = skel.pair_angle(ELBOW_L, ELBOW_R)
    if elbow is not None and elbow < th.lockout_limit_deg:
        missing.append("arms not locked out")
    return Readiness(not missing, tuple(missing), skel.view())


class Pushup2:
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
        fps = config.fps
        skel = read_skeleton(pose, config.frame_width, config.frame_height)
        seen = skel is not None and present(skel.image)
        presence, gone = state.presence.update(frame, fps, seen, th.absent_s, th.no_show_s)
        if gone is not None:
            return replace(state, presence=presence), [gone]
        if skel is None or not seen:
            detector, events = state.detector.step(th.spec, frame, None, fps)
            rep = RepStats() if events.abandoned else state.rep
            return replace(state, presence=presence, detector=detector, rep=rep), ()

        in_position = body_axis_from_vertical(skel) >= IN_POSITION_MIN_DEG
        standing = state.standing.update(frame, is_standing(skel) if state.started else False)
        if standing.reached(frame, fps, th.stand_s):
            return replace(state, presence=presence, standing=standing), [
                forbidden(
                    frame,
                    "stood_up",
                    "stood up during the push-ups",
                    standing_s=standing.seconds(frame, fps),
                    torso_deg=skel.torso_from_vertical(),
                )
            ]

        elbow = skel.pair_angle(ELBOW_L, ELBOW_R) if in_position else None
        views = state.views.add(skel.view()) if in_position else state.views
        detector, events = state.detector.step(th.spec, frame, elbow, fps)
        rep, line_f = state.rep, state.line
        verdicts: list[Verdict] = []
        if events.ended is not None:
            verdicts.append(self._judge(th, events.ended, rep, views))
        if events.started or events.abandoned:
            rep = RepStats()
        if in_position and detector.in_attempt:
            line = body_line_deg(skel)
            if line is not None:
                line_f, line = line_f.push(line)
                rep = replace(
                    rep, max_sag=max(rep.max_sag, line), max_pike=max(rep.max_pike, -line)
                )
            if skel.seen(L.LEFT_KNEE) or skel.seen(L.RIGHT_KNEE):
                knee = skel.pair_angle(KNEE_L, KNEE_R)
                if knee is not None and knee < rep.min_knee:
                    rep = replace(rep, min_knee=knee)
        return State(
            detector=detector,
            line=line_f,
            rep=rep,
            views=views,
            presence=presence,
            standing=standing,
            started=state.started or events.started,
        ), verdicts

    def finish(self, config: RulesConfig, state: State, frame: int) -> Sequence[Verdict]:
        """An attempt that turned at its bottom but had not locked out when the test ended is
        judged as it stands (312); one still going down has no bottom to judge yet."""
        th = thresholds(config.level)
        attempt = state.detector.current(th.spec)
        if attempt is None or attempt.end_frame == attempt.bottom_frame:
            return ()
        return (self._judge(th, attempt, state.rep, state.views),)

    @staticmethod
    def _judge(th: Thresholds, attempt: Attempt, rep: RepStats, views: ViewVote) -> Verdict:
        view = views.view
        return verdict(
            attempt,
            (
                Check(
                    NOT_LOW_ENOUGH,
                    attempt.bottom <= th.depth_limit_deg,
                    {"min_elbow_deg": attempt.bottom, "depth_limit_deg": th.depth_limit_deg},
                ),
                Check(
                    NOT_LOCKED_OUT,
                    attempt.complete,
                    {"top_elbow_deg": attempt.end, "lockout_limit_deg": th.lockout_limit_deg},
                ),
                Check(
                    BODY_NOT_STRAIGHT,
                    rep.max_sag <= th.max_sag_deg
                    and rep.max_pike <= th.max_pike_deg
                    and rep.min_knee >= th.min_knee_deg,
                    {
                        "max_sag_deg": rep.max_sag,
                        "sag_limit_deg": th.max_sag_deg,
                        "max_pike_deg": rep.max_pike,
                        "pike_limit_deg": th.max_pike_deg,
                        "min_knee_deg": rep.min_knee,
                        "knee_limit_deg": th.min_knee_deg,
                    },
                ),
            ),
            view=view,
            extra={"start_elbow_deg": rnd(attempt.top)},
        )


EXERCISE = Pushup2()
