"""Flexed-arm hang rules, version 2: a timed hold measured in 3-D.

The standard: hang from the bar with the elbows bent and the chin over the bar, and hold it;
the score is how many whole seconds. As in version 1, every completed second of valid hold
is one RepJudged with status [0] (so `count` is the seconds held and the tablet sees the time
grow), and when the hold ends one more RepJudged carries the fault that ended it (361 chin
below the bar, 362 arms straightened) for the unfinished second, with the exact hold time in
`hold_s`; after that nothing more is judged (the examinee drops off and walks away).

The position, all from the 3-D world landmarks (`exercises/common/bar.py`), so it reads the
same from the front, the side, behind or at 45 degrees (heights along the vertical of a
straight-arm hang when the examinee was seen in one, as the pull-up does; else the camera's):
- on the bar: the forearms point up from the elbows;
- chin over the bar: the mouth at least `chin_limit` torso lengths above the grip (the
  same limit as the pull-up's top, for the same reasons);
- arms flexed: the elbow angle at most `max_elbow_deg`.

What changed from version 1, and why:
- A hold that is lost before its first whole second is a false start, not the test: it
  scored nothing, so the examinee may settle into the position again (climbing or jumping
  up to the bar passes through the position for a moment; version 1 ended the test there
  with 0 s). Once a second has been counted, losing the position ends the hold for good.
- Version 1's `feet_on_ground` stop is not kept: it needed the floor's image height from
  seeing the examinee stand before the hang, which a cut, a moving camera or a lane camera
  that never sees the feet breaks; a foot taking the weight straightens the arms or drops
  the chin, which ends the hold anyway.

Between losing the position and `grace_s` later the hold continues (keypoint jitter at a
limit must not end a test); frames where the examinee is not seen neither extend nor end
it (a long loss is `left_lane`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache

from khfsm.domain.codes import VALID, fault_code
from khfsm.domain.exercise import RepJudged, RulesConfig, Verdict
from khfsm.domain.pose import Pose

from .common.bar import CAMERA_UP, elbow_deg, hang_axis, mouth_over_grip, on_bar
from .common.geometry import rnd
from .common.judging import Readiness
from .common.levels import per_level
from .common.rules import Presence, present
from .common.world import Skeleton, Vec, ViewVote, read_skeleton

TASK = "armhang"
RULES_VERSION = "armhang-2"
CODE_DIGIT = 6
PUSH_CODE = 6666

CHIN_BELOW_BAR = fault_code(CODE_DIGIT, 1)  # 361
ARMS_STRAIGHTENED = fault_code(CODE_DIGIT, 2)  # 362

FAULTS: Mapping[int, str] = {
    CHIN_BELOW_BAR: "hold ended: chin sank below the bar",
    ARMS_STRAIGHTENED: "hold ended: arms straightened",
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    max_elbow_deg: float
    chin_limit: float  # mouth above the grip, torso lengths
    grace_s: float
    absent_s: float
    no_show_s: float


@cache
def thresholds(level: int) -> Thresholds:
    """Level 5 is the standard exam; each lower level is more lenient.

    - elbows: with the chin at the bar the elbows are at ~60-100 deg (grip width, arm
      length); once they open past ~110 deg the chin cannot stay at the bar, so 110 at
      Level 5 reads "arms straightening" even while the face keypoints lag behind.
    - chin: the pull-up's limit (`exercises/pullup2.py`): the mouth at most 0.05 torso
      below the grip at Level 5.
    - grace: a real loss of position lasts; a dip of a few frames (0.25 s = 5 frames at
      20 fps) is the pose model's jitter at a limit. Version 1's per-level values.
    """
    return Thresholds(
        max_elbow_deg=per_level(level, (130.0, 125.0, 120.0, 115.0, 110.0)),
        chin_limit=per_level(level, (-0.15, -0.125, -0.10, -0.075, -0.05)),
        grace_s=per_level(level, (0.6, 0.5, 0.4, 0.3, 0.25)),
        # An empty lane ends the test only after `absent_s` (nobody coming at all: after
        # `no_show_s`): a person who has really gone makes no further attempts, so a late
        # stop costs nothing, while an early one on a pose-model dropout (backlight, a
        # proctor walking through, a cut) ends a valid exam; pushup-2's values.
        absent_s=per_level(level, (15.0, 14.0, 12.0, 11.0, 10.0)),
        no_show_s=per_level(level, (30.0, 27.0, 24.0, 22.0, 20.0)),
    )


class Phase:
    WAITING = 0  # not yet in position (or after a false start)
    HOLDING = 1
    DONE = 2  # the hold ended; nothing more is counted


@dataclass(frozen=True, slots=True)
class Position:
    """One frame measured against the hold position (None: could not be measured)."""

    elbow: float
    chin: float

    def fault(self, th: Thresholds) -> int:
        """VALID, or what is wrong (arms first: straight arms drop the chin too)."""
        if self.elbow > th.max_elbow_deg:
            return ARMS_STRAIGHTENED
        if self.chin < th.chin_limit:
            return CHIN_BELOW_BAR
        return VALID


@dataclass(frozen=True, slots=True)
class State:
    phase: int = Phase.WAITING
    start: int = -1  # first frame of the hold
    last_valid: int = -1  # last frame in position
    seconds: int = 0  # whole seconds counted
    max_elbow: float = 0.0  # worst (largest) elbow angle during the hold
    min_chin: float = 9.0  # worst (lowest) mouth-over-grip during the hold
    invalid_since: int = -1  # first frame of the current run seen out of position
    fault: int = VALID  # why the position was lost (while within the grace time)
    up: Vec = CAMERA_UP  # the vertical, from a straight-arm hang when one was seen
    views: ViewVote = field(default_factory=ViewVote)
    presence: Presence = field(default_factory=Presence)


def measure(sk: Skeleton | None, up: Vec = CAMERA_UP) -> Position | None:
    """The frame against the hold position; None when not measurable. Hands off the bar
    read as arms straightened: whatever the face does, nobody is hanging."""
    if sk is None:
        return None
    hanging = on_bar(sk, up)
    elbow = elbow_deg(sk)
    if hanging is False:
        return Position(elbow=180.0 if elbow is None else max(elbow, 180.0), chin=-9.0)
    chin = mouth_over_grip(sk, up)
    if hanging is None or elbow is None or chin is None:
        return None
    return Position(elbow=elbow, chin=chin)


def start_position(pose: Pose | None, width: int = 0, height: int = 0, level: int = 5) -> Readiness:
    """Is the examinee in the hold position (the timer starts there), and if not, what is
    missing. Pure: the server asks it at `prepare` and `start`."""
    sk = read_skeleton(pose, width, height)
    if sk is None or not present(sk.image):
        return Readiness(False, ("no person in view",))
    view = sk.view()
    if on_bar(sk) is not True:
        return Readiness(False, ("hands not on the bar",), view)
    position = measure(sk)
    if position is None:
        return Readiness(False, ("face or arms not in view",), view)
    fault = position.fault(thresholds(level))
    if fault == ARMS_STRAIGHTENED:
        return Readiness(False, ("arms not bent",), view)
    if fault == CHIN_BELOW_BAR:
        return Readiness(False, ("chin not over the bar",), view)
    return Readiness(True, (), view)


class Armhang:
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
        if state.phase == Phase.DONE:
            return state, ()
        th = thresholds(config.level)
        fps = config.fps
        sk = read_skeleton(pose, config.frame_width, config.frame_height)
        seen = sk is not None and present(sk.image)
        presence, gone = state.presence.update(frame, fps, seen, th.absent_s, th.no_show_s)
        if gone is not None:
            return replace(state, presence=presence), [gone]
        state = replace(state, presence=presence)
        if sk is not None and seen:
            state = replace(state, up=hang_axis(sk) or state.up)
        position = measure(sk, state.up) if seen else None
        fault = VALID if position is None else position.fault(th)

        if state.phase == Phase.WAITING:
            if position is None or fault != VALID:
                return state, ()
            return replace(
                state,
                phase=Phase.HOLDING,
                start=frame,
                last_valid=frame,
                max_elbow=position.elbow,
                min_chin=position.chin,
                invalid_since=-1,
                fault=VALID,
            ), ()

        if position is not None and sk is not None:
            state = replace(state, views=state.views.add(sk.view()))
            if fault == VALID:
                state = replace(
                    state,
                    last_valid=frame,
                    max_elbow=max(state.max_elbow, position.elbow),
                    min_chin=min(state.min_chin, position.chin),
                    invalid_since=-1,
                    fault=VALID,
                )
            else:
                if state.invalid_since < 0:
                    state = replace(state, invalid_since=frame, fault=fault)
                if frame - state.invalid_since + 1 > th.grace_s * fps:
                    if state.seconds == 0:  # a false start: it scored nothing
                        return State(up=state.up, presence=state.presence), ()
                    return replace(state, phase=Phase.DONE), [_closing(th, state, fps)]

        # Whole seconds of valid hold, counted up to the last frame in position.
        verdicts: list[Verdict] = []
        held = (state.last_valid - state.start + 1) / fps
        while state.seconds + 1 <= held + 1e-9:
            second = state.seconds + 1
            verdicts.append(
                RepJudged(
                    start_frame=state.start + math.ceil((second - 1) * fps - 1e-9),
                    end_frame=state.start + math.ceil(second * fps - 1e-9) - 1,
                    status=(VALID,),
                    measurements=_measurements(th, state, float(second)),
                )
            )
            state = replace(state, seconds=second)
        return state, verdicts

    def finish(self, config: RulesConfig, state: State, frame: int) -> Sequence[Verdict]:
        """A hold still going when the test ends: its whole seconds are already counted."""
        return ()


def _closing(th: Thresholds, state: State, fps: float) -> RepJudged:
    """The verdict that closes the hold: its exact length and what ended it."""
    held = (state.last_valid - state.start + 1) / fps
    first = state.start + math.ceil(state.seconds * fps - 1e-9)
    return RepJudged(
        start_frame=min(first, state.last_valid),
        end_frame=state.last_valid,
        status=(state.fault,),
        measurements=_measurements(th, state, held),
    )


def _measurements(th: Thresholds, state: State, hold_s: float) -> dict[str, float]:
    return {
        "hold_s": rnd(hold_s, 2),
        "max_elbow_deg": rnd(state.max_elbow),
        "elbow_limit_deg": th.max_elbow_deg,
        "min_mouth_over_grip": rnd(state.min_chin, 3),
        "chin_limit": th.chin_limit,
        "camera_view": float(state.views.view.value),
    }


EXERCISE = Armhang()
