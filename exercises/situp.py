"""Sit-up rules.

A repetition starts lying on the back (shoulder blades on the mat), knees bent, hands behind
the head; the examinee sits up until the torso is upright against the thighs (elbows to the
knees) and lies back down. It is counted as soon as the top is reached, the way a judge
calls it; an attempt that turns back before the top is judged when it is back on the mat
(fault 321) or when it turns up again without lying down.

Signal: the hip angle (shoulder-hip-knee) of the side the camera sees, median of 3 frames:
about 150 deg lying with bent knees, about 50 deg sitting up. It does not depend on where the
camera is, only on the body.

Faults at the top: 322 when this sit-up did not start from lying down (the previous one never
went back to the mat), 323 when the hands left the head (a wrist farther from its ear than
`max_hand_head` torso lengths for at least `hands_off_s` seconds of the repetition: shorter
excursions are the wrist keypoint jumping while it is hidden behind the head), 324 when the
knees were not bent.

Unallowed motion (the test stops, status -3):
- `left_lane`: nobody in view for `absent_s` seconds after having been seen;
  `no_person`: nobody came into view at all for the no-show time (10 s at Level 5);
- `stood_up`: standing upright for `stand_s` seconds once the test is under way;
- `rested_lying`: lying on the mat without a sit-up for `rest_s` seconds once the test is
  under way (after the first attempt).
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
from .common.geometry import HIP_L, HIP_R, KNEE_L, KNEE_R, Body, read_body, rnd
from .common.levels import per_level
from .common.rules import Presence, forbidden, is_standing
from .common.timers import Streak

TASK = "situp"
RULES_VERSION = "situp-1"
CODE_DIGIT = 2  # X of its 3XY fault codes
PUSH_CODE = 3333  # prefixes its pushes when the tablet numbers its frames

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


@dataclass(frozen=True, slots=True)
class Thresholds:
    cycle: CycleThresholds  # hip angle, degrees: rest = lying, goal = sitting up
    max_hand_head: float  # wrist-ear distance / torso length
    hands_off_s: float  # ... for at least this long
    max_knee_deg: float  # knees straighter than this are not bent
    absent_s: float
    stand_s: float
    rest_s: float


@cache
def thresholds(level: int) -> Thresholds:
    """Level 5 is the standard exam; each lower level is more lenient."""
    return Thresholds(
        cycle=CycleThresholds(
            rest=per_level(level, (115.0, 120.0, 125.0, 130.0, 135.0)),
            attempt=per_level(level, (105.0, 105.0, 110.0, 110.0, 110.0)),
            goal=per_level(level, (90.0, 85.0, 80.0, 75.0, 70.0)),
            rebound=35.0,
        ),
        max_hand_head=per_level(level, (1.0, 0.9, 0.8, 0.75, 0.7)),
        hands_off_s=per_level(level, (0.6, 0.5, 0.4, 0.35, 0.3)),
        max_knee_deg=per_level(level, (150.0, 145.0, 140.0, 135.0, 130.0)),
        absent_s=per_level(level, (6.0, 5.0, 4.0, 3.5, 3.0)),
        stand_s=per_level(level, (3.0, 2.5, 2.0, 2.0, 1.5)),
        rest_s=per_level(level, (10.0, 9.0, 8.0, 7.0, 6.0)),
    )


@dataclass(frozen=True, slots=True)
class RepStats:
    judged: bool = False  # counted at the top already
    away_since: int = -1  # first frame of the current run of hands away from the head
    max_away_s: float = 0.0  # longest run so far
    max_hand_head: float = -1.0  # -1: hands never seen
    min_knee: float = -1.0  # -1: knees never seen


@dataclass(frozen=True, slots=True)
class State:
    cycle: Cycle = field(default_factory=Cycle)
    hip: Median3 = field(default_factory=Median3)
    rep: RepStats = field(default_factory=RepStats)
    presence: Presence = field(default_factory=Presence)
    standing: Streak = field(default_factory=Streak)
    lying: Streak = field(default_factory=Streak)
    started: bool = False  # a first attempt has been made


def hand_to_head(body: Body) -> float | None:
    """Distance of the farther seen wrist from its ear, in torso lengths (None: not seen)."""
    torso = body.torso_length()
    if torso < 1e-3:
        return None
    worst: float | None = None
    for wrist, ear in ((L.LEFT_WRIST, L.LEFT_EAR), (L.RIGHT_WRIST, L.RIGHT_EAR)):
        if body.vis[wrist] >= 0.5 and body.vis[ear] >= 0.3:
            d = body.dist(wrist, ear) / torso
            worst = d if worst is None else max(worst, d)
    return worst


def _observe(th: Thresholds, rep: RepStats, body: Body, frame: int, fps: float) -> RepStats:
    hands = hand_to_head(body)
    knee = body.side_angle(KNEE_L, KNEE_R)
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
    return RepStats(
        judged=rep.judged,
        away_since=away_since,
        max_away_s=max_away_s,
        max_hand_head=max_hand_head,
        min_knee=min_knee,
    )


class Situp:
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
        if body is None or not seen:
            return replace(state, presence=presence), ()

        # Standing before the first sit-up is getting ready, not a violation.
        standing = state.standing.update(frame, is_standing(body) if state.started else False)
        if standing.reached(frame, fps, th.stand_s):
            return replace(state, presence=presence, standing=standing), [
                forbidden(
                    frame,
                    "stood_up",
                    "stood up during the sit-ups",
                    standing_s=standing.seconds(frame, fps),
                )
            ]

        verdicts: list[Verdict] = []
        cycle, rep, lying, started = state.cycle, state.rep, state.lying, state.started
        hip_f = state.hip
        hip_raw = body.side_angle(HIP_L, HIP_R)
        if hip_raw is not None:
            hip_f, hip = hip_f.push(hip_raw)
            previous = cycle
            cycle, transition = cycle.step(th.cycle, frame, hip, fps)
            if transition in (Transition.STARTED, Transition.ABANDONED):
                rep = RepStats()
            elif transition in (Transition.ENDED_AT_REST, Transition.ENDED_BY_REBOUND):
                if not rep.judged:
                    end = frame if transition is Transition.ENDED_AT_REST else previous.peak_frame
                    verdicts.append(_judge(th, previous, rep, end, reached=False))
                rep = RepStats()
            if cycle.active:
                started = started or cycle.attempted
                rep = _observe(th, rep, body, frame, fps)
                if not rep.judged and cycle.goal_frame >= 0:
                    verdicts.append(_judge(th, cycle, rep, frame, reached=True))
                    rep = replace(rep, judged=True)
            lying = lying.update(frame, started and not cycle.active)
            if lying.reached(frame, fps, th.rest_s):
                verdicts.append(
                    forbidden(
                        frame,
                        "rested_lying",
                        f"rested lying down for {th.rest_s:g} s",
                        lying_s=lying.seconds(frame, fps),
                    )
                )
        return State(
            cycle=cycle,
            hip=hip_f,
            rep=rep,
            presence=presence,
            standing=standing,
            lying=lying,
            started=started,
        ), verdicts

    def finish(self, config: RulesConfig, state: State, frame: int) -> Sequence[Verdict]:
        """A sit-up is counted at the top, so nothing in progress is left to judge: an
        unfinished one that never reached the top is not an attempt a judge would call."""
        return ()


def _judge(th: Thresholds, c: Cycle, rep: RepStats, end: int, *, reached: bool) -> RepJudged:
    codes: list[int] = []
    if not reached:
        codes.append(NOT_UP_ENOUGH)
    if not c.from_rest:
        codes.append(NOT_DOWN)
    if rep.max_away_s >= th.hands_off_s:
        codes.append(HANDS_OFF_HEAD)
    if rep.min_knee > th.max_knee_deg:
        codes.append(KNEES_NOT_BENT)
    return RepJudged(
        start_frame=c.start,
        end_frame=end,
        status=tuple(codes) or (0,),
        measurements={
            "min_hip_deg": rnd(c.extreme),
            "up_limit_deg": th.cycle.goal,
            "from_lying": 1.0 if c.from_rest else 0.0,
            "down_limit_deg": th.cycle.rest,
            "hands_off_s": rnd(rep.max_away_s, 2),
            "hands_off_limit_s": th.hands_off_s,
            "hand_head": rnd(rep.max_hand_head, 3),
            "hand_head_limit": th.max_hand_head,
            "knee_deg": rnd(rep.min_knee),
            "knee_limit_deg": th.max_knee_deg,
        },
    )


EXERCISE = Situp()
