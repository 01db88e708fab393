"""Pull-up rules.

A repetition starts from a hang with the arms straight, pulls up until the chin is over the
bar and lowers back to the hang. It is counted as soon as the chin is over the bar, the way a
judge calls it; an attempt that turns back before that is judged when it is back in the hang
(fault 331), or when it pulls again from part-way down.

Signal: the elbow angle of the side the camera sees (both sides averaged from the front or
behind), median of 3 frames. The bar is where the hands are: the chin is over it when the
mouth is above the wrists by `chin_clearance` torso lengths (the chin sits just below the
mouth), measured in the image with the camera upright.

Faults at the top: 332 when the pull did not start from a hang with straight arms (the
previous repetition turned before the arms were straight: a half repetition), 333 when the
legs kicked (hip angle below the limit: kipping). A repetition that never got the chin over
the bar is 331.

Unallowed motion (the test stops, status -3):
- `left_lane`: nobody in view for `absent_s` seconds after having been seen;
  `no_person`: nobody came into view at all for the no-show time (10 s at Level 5);
- `released_bar`: having hung from the bar, the hands are down by the body (well below the
  shoulders) for `release_s` seconds (let go / stepped down);
- `hung_too_long`: hanging without pulling for `idle_s` seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache

from khfsm.domain.codes import fault_code
from khfsm.domain.exercise import RepJudged, RulesConfig, Verdict
from khfsm.domain.pose import Landmark as L
from khfsm.domain.pose import Pose

from .common.cycle import Cycle, CycleThresholds, Median3, Phase, Transition
from .common.geometry import ELBOW_L, ELBOW_R, HIP_L, HIP_R, Body, read_body, rnd
from .common.levels import per_level
from .common.rules import Presence, forbidden
from .common.timers import Streak

TASK = "pullup"
RULES_VERSION = "pullup-1"
CODE_DIGIT = 3  # X of its 3XY fault codes
PUSH_CODE = 4444  # prefixes its pushes when the tablet numbers its frames

CHIN_NOT_OVER_BAR = fault_code(CODE_DIGIT, 1)  # 331
NOT_FROM_HANG = fault_code(CODE_DIGIT, 2)  # 332
KIPPING = fault_code(CODE_DIGIT, 3)  # 333

FAULTS: Mapping[int, str] = {
    CHIN_NOT_OVER_BAR: "chin not over the bar",
    NOT_FROM_HANG: "did not start from a straight-arm hang",
    KIPPING: "kipping: legs kicked or body swung",
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    cycle: CycleThresholds  # elbow angle, degrees: rest = straight-arm hang
    chin_clearance: float  # mouth above the wrists, torso lengths
    min_hip_deg: float  # hip angle below this during a pull is a kick
    absent_s: float
    release_s: float
    idle_s: float


@cache
def thresholds(level: int) -> Thresholds:
    """Level 5 is the standard exam; each lower level is more lenient."""
    return Thresholds(
        cycle=CycleThresholds(
            rest=per_level(level, (120.0, 125.0, 130.0, 135.0, 140.0)),
            attempt=per_level(level, (110.0, 110.0, 115.0, 115.0, 115.0)),
            goal=per_level(level, (105.0, 100.0, 95.0, 90.0, 90.0)),
            rebound=35.0,
        ),
        chin_clearance=per_level(level, (-0.10, -0.05, 0.0, 0.03, 0.05)),
        min_hip_deg=per_level(level, (100.0, 110.0, 120.0, 125.0, 130.0)),
        absent_s=per_level(level, (6.0, 5.0, 4.0, 3.5, 3.0)),
        release_s=per_level(level, (2.0, 1.8, 1.5, 1.2, 1.0)),
        idle_s=per_level(level, (20.0, 17.0, 14.0, 12.0, 10.0)),
    )


@dataclass(frozen=True, slots=True)
class RepStats:
    judged: bool = False  # counted at the top already
    max_chin: float = -9.0  # best mouth-over-wrists so far, torso lengths
    min_hip: float = -1.0  # -1: hips/knees never seen


@dataclass(frozen=True, slots=True)
class State:
    cycle: Cycle = field(default_factory=Cycle)
    elbow: Median3 = field(default_factory=Median3)
    chin: Median3 = field(default_factory=Median3)
    rep: RepStats = field(default_factory=RepStats)
    presence: Presence = field(default_factory=Presence)
    released: Streak = field(default_factory=Streak)
    idle: Streak = field(default_factory=Streak)
    has_hung: bool = False


def chin_over_hands(body: Body) -> float | None:
    """Mouth height above the mean of the seen wrists, in torso lengths (None: not seen)."""
    torso = body.torso_length()
    if torso < 1e-3 or not body.seen(L.MOUTH_LEFT, L.MOUTH_RIGHT, min_vis=0.3):
        return None
    ys = [body.y[w] for w in (L.LEFT_WRIST, L.RIGHT_WRIST) if body.vis[w] >= 0.3]
    if not ys:
        return None
    mouth = 0.5 * (body.y[L.MOUTH_LEFT] + body.y[L.MOUTH_RIGHT])
    return (sum(ys) / len(ys) - mouth) / torso  # image y grows downward


HANDS_DOWN_TORSO = 0.5  # wrists this far (torso lengths) below the shoulders: off the bar


def hands_position(body: Body) -> bool | None:
    """True: hands above the head (on the bar); False: hands down by the body; None: unknown
    or in between. At the top of a pull-up the hands are about level with the shoulders, so
    "off the bar" needs them well below the shoulders, halfway to the hips."""
    wrists = [w for w in (L.LEFT_WRIST, L.RIGHT_WRIST) if body.vis[w] >= 0.5]
    shoulders = [s for s in (L.LEFT_SHOULDER, L.RIGHT_SHOULDER) if body.vis[s] >= 0.5]
    if not wrists or not shoulders:
        return None
    wrist_y = sum(body.y[w] for w in wrists) / len(wrists)
    shoulder_y = sum(body.y[s] for s in shoulders) / len(shoulders)
    if wrist_y < body.y[L.NOSE]:
        return True
    if wrist_y > shoulder_y + HANDS_DOWN_TORSO * body.torso_length():
        return False
    return None


class Pullup:
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

        hands = hands_position(body)
        has_hung = state.has_hung or hands is True
        released = state.released.update(
            frame, None if hands is None or not has_hung else not hands
        )
        if released.reached(frame, fps, th.release_s):
            return replace(state, presence=presence, released=released, has_hung=has_hung), [
                forbidden(
                    frame,
                    "released_bar",
                    "let go of the bar",
                    released_s=released.seconds(frame, fps),
                )
            ]

        verdicts: list[Verdict] = []
        cycle, rep, idle = state.cycle, state.rep, state.idle
        elbow_f, chin_f = state.elbow, state.chin
        elbow_raw = body.side_angle(ELBOW_L, ELBOW_R) if hands is not False else None
        if elbow_raw is not None:
            elbow_f, elbow = elbow_f.push(elbow_raw)
            chin_raw = chin_over_hands(body)
            chin = None
            if chin_raw is not None:
                chin_f, chin = chin_f.push(chin_raw)
            previous = cycle
            cycle, transition = cycle.step(th.cycle, frame, elbow, fps)
            if transition in (Transition.STARTED, Transition.ABANDONED):
                rep = RepStats()
            elif transition in (Transition.ENDED_AT_REST, Transition.ENDED_BY_REBOUND):
                if not rep.judged:
                    end = frame if transition is Transition.ENDED_AT_REST else previous.peak_frame
                    verdicts.append(_judge(th, previous, rep, end, over_bar=False))
                rep = RepStats()
            if cycle.active:
                hip = body.side_angle(HIP_L, HIP_R, min_vis=0.5, floor=0.5)
                rep = RepStats(
                    judged=rep.judged,
                    max_chin=max(rep.max_chin, chin) if chin is not None else rep.max_chin,
                    min_hip=(hip if rep.min_hip < 0 else min(rep.min_hip, hip))
                    if hip is not None
                    else rep.min_hip,
                )
                if (
                    not rep.judged
                    and elbow <= th.cycle.goal
                    and chin is not None
                    and chin >= th.chin_clearance
                ):
                    verdicts.append(_judge(th, cycle, rep, frame, over_bar=True))
                    rep = replace(rep, judged=True)
            idle = idle.update(frame, cycle.phase is Phase.REST)
            if idle.reached(frame, fps, th.idle_s):
                verdicts.append(
                    forbidden(
                        frame,
                        "hung_too_long",
                        f"hung without pulling for {th.idle_s:g} s",
                        idle_s=idle.seconds(frame, fps),
                    )
                )
        return State(
            cycle=cycle,
            elbow=elbow_f,
            chin=chin_f,
            rep=rep,
            presence=presence,
            released=released,
            idle=idle,
            has_hung=has_hung,
        ), verdicts

    def finish(self, config: RulesConfig, state: State, frame: int) -> Sequence[Verdict]:
        """A pull-up is counted at the top, so nothing in progress is left to judge."""
        return ()


def _judge(th: Thresholds, c: Cycle, rep: RepStats, end: int, *, over_bar: bool) -> RepJudged:
    codes: list[int] = []
    if not over_bar:
        codes.append(CHIN_NOT_OVER_BAR)
    if not c.from_rest:
        codes.append(NOT_FROM_HANG)
    if 0 <= rep.min_hip < th.min_hip_deg:
        codes.append(KIPPING)
    return RepJudged(
        start_frame=c.start,
        end_frame=end,
        status=tuple(codes) or (0,),
        measurements={
            "min_elbow_deg": rnd(c.extreme),
            "top_limit_deg": th.cycle.goal,
            "chin_over_hands": rnd(rep.max_chin, 3) if rep.max_chin > -9.0 else -1.0,
            "chin_limit": th.chin_clearance,
            "from_hang": 1.0 if c.from_rest else 0.0,
            "hang_limit_deg": th.cycle.rest,
            "min_hip_deg": rnd(rep.min_hip),
            "hip_limit_deg": th.min_hip_deg,
        },
    )


EXERCISE = Pullup()
