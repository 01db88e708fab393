"""Sit-up rules, version 2: find every attempt in 3-D, then judge it against the standard.

The standard: lying on the back with the shoulder blades on the mat, knees bent, hands
behind the head; sit up until the elbows reach the knees (torso near vertical) and lie back
down. A judge calls the repetition at the top.

Finding attempts (`exercises.common.attempts`): the signal is the hip angle
(shoulder-hip-knee) in 3-D, the side the camera sees (both averaged when both are seen):
lying with bent knees ~130-140 deg, sitting up ~45-70. It belongs to the body, not the
camera, so a front, side or oblique camera, a decline bench, a partner holding the feet or
a crunch (a small range) give the same attempts. Every down-and-up of at least
`MIN_EXCURSION_DEG` (relative to this examinee's own range) that begins lying back (torso
at least `LYING_MIN_DEG` from vertical in 3-D) and lifts the torso by `TORSO_LIFT_MIN_DEG`
is an attempt; it is judged the moment it
turns back toward the mat (its top is then known), so the examinee hears at once.

Judging, per level (5 = the standard exam):
- 321 not up enough: the smallest hip angle > `up_limit_deg`;
- 322 not down: the attempt did not start lying down (hip angle below `down_limit_deg` at
  its start: the previous one never went back to the mat);
- 323 hands off the head: a wrist farther than `max_hand_head` torso lengths (3-D) from its
  ear for at least `hands_off_s` seconds of the attempt (shorter excursions are the wrist
  keypoint jumping while hidden behind the head);
- 324 knees not bent: the knee angle stayed above `max_knee_deg` throughout.

The camera view is recorded in every verdict (`camera_view`, `exercises.common.world.View`).

Unallowed motion (status -3), only what no camera angle can fake:
- `left_lane`: nobody in view for `absent_s` seconds (10 at Level 5) after having been
  seen; `no_person`: nobody came into view at all for `no_show_s` (20 at Level 5);
- `stood_up`: standing upright (3-D) for `stand_s` seconds after the first attempt.
(`*-1`'s `rested_lying` stopped a complete session that paused between repetitions; a
pause now simply produces no attempts.)

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
from .common.geometry import HIP_L, HIP_R, KNEE_L, KNEE_R
from .common.judging import Check, Readiness, verdict
from .common.levels import per_level
from .common.rules import Presence, forbidden, present
from .common.timers import Streak
from .common.world import Skeleton, ViewVote, is_standing, read_skeleton

TASK = "situp"
RULES_VERSION = "situp-2"
CODE_DIGIT = 2
PUSH_CODE = 3333

NOT_UP_ENOUGH = fault_code(CODE_DIGIT, 1)  # 321
NOT_DOWN = fault_code(CODE_DIGIT, 2)  # 322
HANDS_OFF_HEAD = fault_code(CODE_DIGIT, 3)  # 323
KNEES_NOT_BENT = fault_code(CODE_DIGIT, 4)  # 324

FAULTS: Mapping[int, str] = {
    NOT_UP_ENOUGH: "did not sit up far enough: elbows to the knees",
    NOT_DOWN: "did not lie back down: shoulder blades to the mat",
    HANDS_OFF_HEAD: "hands left the head",
    KNEES_NOT_BENT: "knees not bent",
}

# The smallest hip movement that is an attempt: a crunch (a sit-up that only lifts the
# shoulder blades, ~12 cm over a 0.5 m torso) closes the hip by ~15 deg; 12 leaves room for
# the 3-D estimate's under-reading and stays 4x above the filtered angle's frame jitter
# (~3 deg). Slow drift while lying still is kept out by the torso-lift rule below.
MIN_EXCURSION_DEG = 12.0
# A sit-up moves the torso: at its top the torso is at least this much more upright than at
# its start (the crunch above lifts it ~15 deg). Closing the hip by pulling the knees up, or
# keypoints drifting while the examinee lies still, lifts no torso and is no attempt.
TORSO_LIFT_MIN_DEG = 10.0
# Lying with the feet flat and the knees bent to ~90 deg puts the thighs ~45 deg above the
# mat, so a flat torso makes a hip angle of 180 - 45 = 135 deg.
FLAT_HIP_DEG = 135.0
# A sit-up begins lying back: the torso within 30 deg of the mat (3-D; lying reads 80-90 from
# vertical, sitting up 0-30; 30 deg of tolerance also covers a camera rolled by 20 deg). A
# hip movement that begins sitting up (talking, shifting on the mat, getting into position)
# is not a sit-up attempt.
LYING_MIN_DEG = 60.0
# The shoulder keypoints sit ~10 cm above the mat when the blades touch it: ~11 deg over a
# 0.5 m torso.
BLADES_DEG = 11.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    spec: AttemptSpec  # hip angle, degrees (3-D)
    up_limit_deg: float
    down_limit_deg: float
    max_hand_head: float
    hands_off_s: float
    max_knee_deg: float
    absent_s: float
    no_show_s: float
    stand_s: float


@cache
def thresholds(level: int) -> Thresholds:
    """Level 5 is the standard exam; each lower level is more lenient."""
    down = FLAT_HIP_DEG - BLADES_DEG - per_level(level, (20.0, 15.0, 10.0, 5.0, 0.0))
    return Thresholds(
        spec=AttemptSpec(min_excursion=MIN_EXCURSION_DEG, complete_at=down),
        # Elbows to the knees: the torso within ~25 deg of vertical, with the thighs ~45 deg
        # up that is a hip angle of 45 + 25 = 70 at Level 5; up to 20 deg more lenient.
        up_limit_deg=per_level(level, (90.0, 85.0, 80.0, 75.0, 70.0)),
        down_limit_deg=down,
        # Hands behind the head keep the wrist within ~15 cm of the ear, 0.3 torso lengths;
        # 0.7 (~35 cm) at Level 5 is clearly off the head.
        max_hand_head=per_level(level, (1.0, 0.9, 0.8, 0.75, 0.7)),
        hands_off_s=per_level(level, (0.6, 0.5, 0.4, 0.35, 0.3)),
        # Knees bent to ~90 deg by the standard; 130 at Level 5 (40 deg of tolerance).
        max_knee_deg=per_level(level, (150.0, 145.0, 140.0, 135.0, 130.0)),
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
    away_since: int = -1  # first frame of the current run of hands away from the head
    max_away_s: float = 0.0
    max_hand_head: float = -1.0  # -1: hands never seen
    min_knee: float = -1.0  # -1: knees never seen


@dataclass(frozen=True, slots=True)
class State:
    detector: AttemptDetector = field(default_factory=AttemptDetector)
    rep: RepStats = field(default_factory=RepStats)
    views: ViewVote = field(default_factory=ViewVote)
    presence: Presence = field(default_factory=Presence)
    standing: Streak = field(default_factory=Streak)
    started: bool = False  # a first attempt has been made
    top_torso: float = 90.0  # torso from vertical at the detector's top frame
    peak_torso: float = 90.0  # ... at its peak frame (where a bounce begins)
    bottom_torso: float = 90.0  # ... and at its bottom frame (the attempt's top)


def hand_to_head(skel: Skeleton) -> float | None:
    """Distance of the farther seen wrist from its ear, in torso lengths (3-D)."""
    s = skel.mid(L.LEFT_SHOULDER, L.RIGHT_SHOULDER)
    h = skel.mid(L.LEFT_HIP, L.RIGHT_HIP)
    torso = math.dist(s, h)
    if not torso > 0.05:
        return None
    worst: float | None = None
    for wrist, ear in ((L.LEFT_WRIST, L.LEFT_EAR), (L.RIGHT_WRIST, L.RIGHT_EAR)):
        if skel.image.vis[wrist] >= 0.5 and skel.image.vis[ear] >= 0.3:
            d = math.dist(skel.point(wrist), skel.point(ear)) / torso
            worst = d if worst is None else max(worst, d)
    return worst


def _observe(th: Thresholds, rep: RepStats, skel: Skeleton, frame: int, fps: float) -> RepStats:
    hands = hand_to_head(skel)
    knee = skel.pair_angle(KNEE_L, KNEE_R)
    away_since, max_away_s, max_hand_head = rep.away_since, rep.max_away_s, rep.max_hand_head
    if hands is not None:
        max_hand_head = max(max_hand_head, hands)
        if hands > th.max_hand_head:
            away_since = frame if away_since < 0 else away_since
            max_away_s = max(max_away_s, (frame - away_since + 1) / fps)
        else:
            away_since = -1
    min_knee = rep.min_knee
    if knee is not None:
        min_knee = knee if min_knee < 0 else min(min_knee, knee)
    return RepStats(away_since, max_away_s, max_hand_head, min_knee)


def start_position(pose: Pose | None, width: int = 0, height: int = 0, level: int = 5) -> Readiness:
    """Is this pose the sit-up start position (on the back, knees bent, hands at the head)?"""
    skel = read_skeleton(pose, width, height)
    if skel is None or not present(skel.image):
        return Readiness(False, ("no person in view",))
    th = thresholds(level)
    missing: list[str] = []
    for name, pair in (
        ("shoulders", (L.LEFT_SHOULDER, L.RIGHT_SHOULDER)),
        ("hips", (L.LEFT_HIP, L.RIGHT_HIP)),
        ("knees", (L.LEFT_KNEE, L.RIGHT_KNEE)),
    ):
        if not (skel.seen(pair[0]) or skel.seen(pair[1])):
            missing.append(f"{name} not in view")
    hip = skel.pair_angle(HIP_L, HIP_R)
    if skel.torso_from_vertical() < LYING_MIN_DEG:
        missing.append("not lying on the back")
    elif hip is not None and hip < th.down_limit_deg:
        missing.append("shoulder blades not on the mat")
    knee = skel.pair_angle(KNEE_L, KNEE_R)
    if knee is not None and knee > th.max_knee_deg:
        missing.append("knees not bent")
    hands = hand_to_head(skel)
    if hands is not None and hands > th.max_hand_head:
        missing.append("hands not behind the head")
    return Readiness(not missing, tuple(missing), skel.view())


class Situp2:
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

        # Standing before the first sit-up is getting ready, not a violation.
        standing = state.standing.update(frame, is_standing(skel) if state.started else False)
        if standing.reached(frame, fps, th.stand_s):
            return replace(state, presence=presence, standing=standing), [
                forbidden(
                    frame,
                    "stood_up",
                    "stood up during the sit-ups",
                    standing_s=standing.seconds(frame, fps),
                )
            ]

        hip = skel.pair_angle(HIP_L, HIP_R)
        views = state.views.add(skel.view()) if hip is not None else state.views
        detector, events = state.detector.step(th.spec, frame, hip, fps)
        rep, started = state.rep, state.started
        # The torso's lean where the current attempt began (its top, or the peak a bounce
        # began from): a sit-up starts lying back, not sitting.
        torso = skel.torso_from_vertical()
        top_torso = state.peak_torso if events.started and events.ended else state.top_torso
        if detector.top_frame == frame:
            top_torso = torso
        peak_torso = torso if detector.peak_frame == frame else state.peak_torso
        bottom_torso = torso if detector.bottom_frame == frame else state.bottom_torso
        verdicts: list[Verdict] = []
        if events.started or events.abandoned:
            rep = RepStats()
        if detector.in_attempt or events.turned is not None:
            rep = _observe(th, rep, skel, frame, fps)
        turned = events.turned
        if (
            turned is not None
            and top_torso >= LYING_MIN_DEG
            and top_torso - bottom_torso >= TORSO_LIFT_MIN_DEG
        ):
            started = True
            verdicts.append(_judge(th, turned, rep, views, frame, top_torso, bottom_torso))
        return State(
            detector=detector,
            rep=rep,
            views=views,
            presence=presence,
            standing=standing,
            started=started,
            top_torso=top_torso,
            peak_torso=peak_torso,
            bottom_torso=bottom_torso,
        ), verdicts

    def finish(self, config: RulesConfig, state: State, frame: int) -> Sequence[Verdict]:
        """A sit-up is judged at its top (the turn), so nothing in progress is left to
        judge: one still on its way up when the test ended has no top yet."""
        return ()


def _judge(
    th: Thresholds,
    attempt: Attempt,
    rep: RepStats,
    views: ViewVote,
    frame: int,
    start_torso: float,
    top_torso: float,
) -> Verdict:
    return verdict(
        attempt,
        (
            Check(
                NOT_UP_ENOUGH,
                attempt.bottom <= th.up_limit_deg,
                {"min_hip_deg": attempt.bottom, "up_limit_deg": th.up_limit_deg},
            ),
            Check(
                NOT_DOWN,
                attempt.from_rest,
                {"start_hip_deg": attempt.top, "down_limit_deg": th.down_limit_deg},
            ),
            Check(
                HANDS_OFF_HEAD,
                rep.max_away_s < th.hands_off_s,
                {
                    "hands_off_s": rep.max_away_s,
                    "hands_off_limit_s": th.hands_off_s,
                    "hand_head": rep.max_hand_head,
                    "hand_head_limit": th.max_hand_head,
                },
            ),
            Check(
                KNEES_NOT_BENT,
                rep.min_knee <= th.max_knee_deg,
                {"knee_deg": rep.min_knee, "knee_limit_deg": th.max_knee_deg},
            ),
        ),
        view=views.view,
        end_frame=frame,
        extra={"start_torso_deg": start_torso, "top_torso_deg": top_torso},
    )


EXERCISE = Situp2()
