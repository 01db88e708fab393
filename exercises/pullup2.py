"""Pull-up rules, version 2: find every pull, then judge it against the standard.

The standard: from a hang with the arms straight, pull until the chin is over the bar, lower
back to the hang; no kipping (no swinging the legs to help).

Finding (`exercises/common/attempts.py`): the signal is the elbow angle in 3-D (the same
from the front, the side, behind or at 45 degrees), taken only while the forearms point up
at the bar (`bar.on_bar`). Heights (the chin against the grip, the forearms) are measured
along the vertical calibrated from the examinee's own straight-arm hang (`bar.hang_axis`),
so a high or tilted camera does not change them. Every bend-and-straighten of the elbows by
more than the examinee's own hysteresis is an attempt, whether or not it started from a full
hang or got the chin over the bar: those are the judge's business. A pull that never hangs fully
straight between repetitions is still found (the detector ends an attempt at a turn as well
as at the hang).

Judging, at the top (the turn: the elbows open again by the hysteresis), the way a judge
calls a pull-up; every attempt is one verdict, pushed at once:
- 331 chin not over the bar: the mouth never got to the grip height (`chin_limit`, torso
  lengths; see `bar.py` for why the mouth and not the chin is measured);
- 332 did not start from a straight-arm hang: the elbow angle the attempt started from is
  below `hang_limit_deg`;
- 333 kipping: the hip angle (shoulder-hip-knee, 3-D) went below `hip_limit_deg` during
  the attempt (legs kicked up); legs out of view are not judged.

Unallowed motion (the test stops, status -3): only `left_lane` / `no_person`, as every
exercise (`rules.Presence`). Version 1's other two are not kept:
- `hung_too_long`: hanging is the start position and the test's own time limit already
  ends a test that stalls; a stop for resting ends tests on a pause a judge allows.
- `released_bar`: once the hands are off the bar no attempt can be found (the elbow is
  read only while the forearms point up at the bar), so stopping adds nothing to the
  count, while an end card, a cut or a person walking through reads as "hands down" and
  stopped complete sessions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache

from khfsm.domain.codes import fault_code
from khfsm.domain.exercise import RulesConfig, Verdict
from khfsm.domain.pose import Landmark as L
from khfsm.domain.pose import Pose

from .common.attempts import Attempt, AttemptDetector, AttemptSpec
from .common.bar import CAMERA_UP, elbow_deg, hang_axis, mouth_over_grip, on_bar
from .common.geometry import HIP_L, HIP_R
from .common.judging import Check, Readiness, verdict
from .common.levels import per_level
from .common.rules import Presence, present
from .common.world import Vec, ViewVote, read_skeleton

TASK = "pullup"
RULES_VERSION = "pullup-2"
CODE_DIGIT = 3
PUSH_CODE = 4444

CHIN_NOT_OVER_BAR = fault_code(CODE_DIGIT, 1)  # 331
NOT_FROM_HANG = fault_code(CODE_DIGIT, 2)  # 332
KIPPING = fault_code(CODE_DIGIT, 3)  # 333

FAULTS: Mapping[int, str] = {
    CHIN_NOT_OVER_BAR: "chin not over the bar",
    NOT_FROM_HANG: "did not start from a straight-arm hang",
    KIPPING: "kipping: legs kicked or body swung",
}

# Finding (the same at every level: whether a pull happened does not depend on the grade).
# A full pull-up takes the elbows from ~170 deg (hang) to ~70-90 deg (chin over the bar);
# a third of that travel is the smallest bend that is a pull rather than a shift of the grip
# or a swing, and it is several times the frame-to-frame noise of a 3-D elbow angle.
MIN_PULL_DEG = 30.0
# A body moves an elbow at most ~600 deg/s in a fast kipping rep; faster is a cut or a
# re-detection of someone else (the detector's default, 1000, leaves a margin).
MAX_ELBOW_SPEED_DPS = 1000.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    hang_limit_deg: float  # elbow at least this at the start: a straight-arm hang
    chin_limit: float  # mouth above the grip by at least this (torso lengths)
    hip_limit_deg: float  # hip angle below this during a pull: the legs kicked
    absent_s: float
    no_show_s: float


@cache
def thresholds(level: int) -> Thresholds:
    """Level 5 is the standard exam; each lower level is more lenient.

    - hang: arms straight means 180 deg; a judge cannot see a bend under ~15 deg and the
      3-D elbow of a straight arm reads ~15 deg short (the pose model's error on a straight
      limb), so 150 at Level 5; each level below allows 5 deg more of a bent-arm hang.
    - chin: the mouth at the grip height (0) puts the chin one mouth-to-chin length
      (~0.1 torso) below the bar top; Level 5 allows half that again (0.05 torso, the
      model's error at the face and hands) below it; lower levels a little more.
    - hips: a still hang keeps the hips at ~170-180 deg; a kip flexes them to ~90-120;
      version 1's per-level limits (130 at Level 5, 50 deg of hip flexion) are kept.
    """
    return Thresholds(
        hang_limit_deg=per_level(level, (130.0, 135.0, 140.0, 145.0, 150.0)),
        chin_limit=per_level(level, (-0.15, -0.125, -0.10, -0.075, -0.05)),
        hip_limit_deg=per_level(level, (100.0, 110.0, 120.0, 125.0, 130.0)),
        # An empty lane ends the test only after `absent_s` (nobody coming at all: after
        # `no_show_s`): a person who has really gone makes no further attempts, so a late
        # stop costs nothing, while an early one on a pose-model dropout (backlight, a
        # proctor walking through, a cut) ends a valid exam; pushup-2's values.
        absent_s=per_level(level, (15.0, 14.0, 12.0, 11.0, 10.0)),
        no_show_s=per_level(level, (30.0, 27.0, 24.0, 22.0, 20.0)),
    )


@cache
def attempt_spec(level: int) -> AttemptSpec:
    """The detector's settings: `complete_at` is the standard's hang, so a pull that starts
    there is `from_rest`; one that does not is still found (ended at its turn)."""
    return AttemptSpec(
        min_excursion=MIN_PULL_DEG,
        complete_at=thresholds(level).hang_limit_deg,
        max_speed=MAX_ELBOW_SPEED_DPS,
    )


@dataclass(frozen=True, slots=True)
class RepStats:
    """What the judge needs from the frames of one attempt."""

    judged: bool = False
    max_chin: float | None = None  # highest mouth-over-grip (torso lengths)
    min_hip: float | None = None  # smallest hip angle (None: legs never seen)


@dataclass(frozen=True, slots=True)
class State:
    detector: AttemptDetector = field(default_factory=AttemptDetector)
    up: Vec = CAMERA_UP  # the vertical, from the last straight-arm hang (`bar.hang_axis`)
    rep: RepStats = field(default_factory=RepStats)
    views: ViewVote = field(default_factory=ViewVote)
    presence: Presence = field(default_factory=Presence)


def start_position(pose: Pose | None, width: int = 0, height: int = 0, level: int = 5) -> Readiness:
    """Is the examinee hanging from the bar with straight arms (the start position), and if
    not, what is missing. Pure: the server asks it at `prepare` and `start`."""
    sk = read_skeleton(pose, width, height)
    if sk is None or not present(sk.image):
        return Readiness(False, ("no person in view",))
    view = sk.view()
    missing: list[str] = []
    arms = (L.LEFT_ELBOW, L.RIGHT_ELBOW, L.LEFT_WRIST, L.RIGHT_WRIST)
    if not any(sk.image.vis[p] >= 0.3 for p in arms):
        missing.append("arms not in view")
    elif on_bar(sk) is not True:
        missing.append("hands not on the bar")
    else:
        elbow = elbow_deg(sk)
        if elbow is None or elbow < thresholds(level).hang_limit_deg:
            missing.append("arms not straight")
    if mouth_over_grip(sk) is None:
        missing.append("face not in view")
    return Readiness(not missing, tuple(missing), view)


class Pullup:
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
        up = state.up
        hanging = on_bar(sk, up) if sk is not None and seen else None
        # The elbow only counts while the hands are on the bar: standing with the arms
        # down, an elbow is straight too, and must not read as a hang.
        elbow = elbow_deg(sk) if sk is not None and hanging is not False and seen else None
        if sk is not None and hanging is True:
            up = hang_axis(sk) or up
        detector, events = state.detector.step(spec, frame, elbow, fps)
        rep, views = state.rep, state.views
        if events.abandoned:
            # Lost mid-pull, or a cut: the world axes may now be another camera's.
            rep, up = RepStats(), CAMERA_UP
        elif events.started:
            rep = RepStats()
        if sk is not None and elbow is not None:
            views = views.add(sk.view())
            if detector.in_attempt and not rep.judged:
                chin = mouth_over_grip(sk, up)
                hip = sk.pair_angle(HIP_L, HIP_R)
                rep = RepStats(
                    judged=False,
                    max_chin=_max(rep.max_chin, chin),
                    min_hip=_min(rep.min_hip, hip),
                )
        verdicts: list[Verdict] = []
        if events.turned is not None and not rep.judged:
            verdicts.append(judge(th, events.turned, rep, views, end=frame))
            rep = replace(rep, judged=True)
        return State(detector=detector, up=up, rep=rep, views=views, presence=presence), verdicts

    def finish(self, config: RulesConfig, state: State, frame: int) -> Sequence[Verdict]:
        """A pull still on its way up when the test ends is judged if the chin already got
        over the bar (the judge would have called it); a pull cut short by the time is not
        an attempt the examinee could finish, so it is not held against them."""
        th = thresholds(config.level)
        current = state.detector.current(attempt_spec(config.level))
        rep = state.rep
        if current is None or rep.judged:
            return ()
        if rep.max_chin is None or rep.max_chin < th.chin_limit:
            return ()
        return (judge(th, current, rep, state.views, end=max(current.bottom_frame, frame - 1)),)


def judge(th: Thresholds, attempt: Attempt, rep: RepStats, views: ViewVote, end: int) -> Verdict:
    """One attempt against the standard: status (0,) or its faults, with the measurements."""
    chin = rep.max_chin
    hip = rep.min_hip
    checks = (
        Check(
            CHIN_NOT_OVER_BAR,
            chin is not None and chin >= th.chin_limit,
            {"mouth_over_grip": -9.0 if chin is None else chin, "mouth_limit": th.chin_limit},
        ),
        Check(
            NOT_FROM_HANG,
            attempt.top >= th.hang_limit_deg,
            {"hang_elbow_deg": attempt.top, "hang_limit_deg": th.hang_limit_deg},
        ),
        Check(
            KIPPING,
            hip is None or hip >= th.hip_limit_deg,
            {"min_hip_deg": -1.0 if hip is None else hip, "hip_limit_deg": th.hip_limit_deg},
        ),
    )
    return verdict(
        attempt,
        checks,
        view=views.view,
        end_frame=end,
        extra={"top_elbow_deg": attempt.bottom},
    )


def _max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None or a >= b else b


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None or a <= b else b


EXERCISE = Pullup()
