"""Flexed-arm hang rules: a timed hold, no repetitions.

The examinee hangs from the bar with the elbows bent and the chin over the bar, and holds it;
the score is how long. The hold starts at the first frame in the valid position and ends
when the position is seen lost for longer than `grace_s` (the chin sinks below the bar or the
arms straighten); frames where the examinee is not seen neither extend nor end the hold (a
long loss is `left_lane`). A real test has one hold, so nothing is counted after it ends.

How the tablet sees it (count/total/RepJudged): every completed second of valid hold is one
RepJudged with status [0], so `count` is the seconds held and the tablet shows the time
growing while the examinee hangs. When the hold ends, one more RepJudged carries the fault
that ended it (361 chin below the bar, 362 arms straightened) for the unfinished second,
with the exact hold time in its measurements (`hold_s`); so total = count + 1 once the hold
is over. A hold still going when the test ends adds nothing: its whole seconds are already
counted. After the hold has ended nothing more is judged (the examinee drops off and walks
away, which is not a violation).

Position: the elbow angle (both arms when seen, else the seen one) at most `max_elbow_deg`,
and the mouth above the hands (the bar) by `chin_clearance` torso lengths. Between losing
the position and `grace_s` later the hold continues (keypoint jitter at the threshold must
not end a test).

Unallowed motion (the test stops, status -3):
- `left_lane`: nobody in view for `absent_s` seconds after having been seen;
  `no_person`: nobody came into view at all for the no-show time (10 s at Level 5);
- `feet_on_ground`: during the hold, the ankles come down to where they stood on the floor
  before the hang (within `floor_margin` torso lengths) for `floor_s` seconds: the feet took
  the weight. Only judged when the examinee was seen standing with the hands down before the
  hold (that is where the floor is); a lane camera that never sees the feet cannot apply it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache

from khfsm.domain.codes import VALID, fault_code
from khfsm.domain.exercise import RepJudged, RulesConfig, Verdict
from khfsm.domain.pose import Landmark as L
from khfsm.domain.pose import Pose

from .common.geometry import ELBOW_L, ELBOW_R, Body, read_body, rnd
from .common.levels import per_level
from .common.rules import Presence, forbidden, is_standing
from .common.timers import Streak
from .pullup import chin_over_hands, hands_position

TASK = "armhang"
RULES_VERSION = "armhang-1"
CODE_DIGIT = 6  # X of its 3XY fault codes
PUSH_CODE = 6666  # prefixes its pushes when the tablet numbers its frames

CHIN_BELOW_BAR = fault_code(CODE_DIGIT, 1)  # 361
ARMS_STRAIGHTENED = fault_code(CODE_DIGIT, 2)  # 362

FAULTS: Mapping[int, str] = {
    CHIN_BELOW_BAR: "hold ended: chin sank below the bar",
    ARMS_STRAIGHTENED: "hold ended: arms straightened",
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    max_elbow_deg: float
    chin_clearance: float  # mouth above the wrists, torso lengths
    grace_s: float
    absent_s: float
    floor_margin: float  # torso lengths
    floor_s: float


@cache
def thresholds(level: int) -> Thresholds:
    """Level 5 is the standard exam; each lower level is more lenient."""
    return Thresholds(
        max_elbow_deg=per_level(level, (110.0, 105.0, 100.0, 95.0, 90.0)),
        chin_clearance=per_level(level, (-0.10, -0.05, 0.0, 0.03, 0.05)),
        grace_s=per_level(level, (0.6, 0.5, 0.4, 0.3, 0.25)),
        absent_s=per_level(level, (6.0, 5.0, 4.0, 3.5, 3.0)),
        floor_margin=per_level(level, (0.05, 0.07, 0.08, 0.09, 0.10)),
        floor_s=per_level(level, (1.0, 0.8, 0.6, 0.5, 0.5)),
    )


class Phase:
    WAITING = 0  # not yet in position
    HOLDING = 1
    DONE = 2  # the hold ended; nothing more is counted


@dataclass(frozen=True, slots=True)
class State:
    phase: int = Phase.WAITING
    start: int = -1  # first frame of the hold
    last_valid: int = -1  # last frame in position
    seconds: int = 0  # whole seconds counted
    max_elbow: float = 0.0  # worst (largest) elbow angle during the hold
    min_chin: float = 9.0  # worst (lowest) mouth-over-hands during the hold
    invalid_since: int = -1  # first frame of the current run seen out of position
    fault: int = VALID  # why the position was lost (while within the grace time)
    floor_y: float = -1.0  # ankle height (image y) when last seen standing; -1 unknown
    floor_torso: float = 0.0  # torso length then, to scale the margin
    presence: Presence = field(default_factory=Presence)
    on_floor: Streak = field(default_factory=Streak)


def _elbow(body: Body) -> float | None:
    return body.side_angle(ELBOW_L, ELBOW_R)


def _ankle_y(body: Body) -> float | None:
    ys = [body.y[a] for a in (L.LEFT_ANKLE, L.RIGHT_ANKLE) if body.vis[a] >= 0.5]
    return max(ys) if ys else None


class Armhang:
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

        if state.phase == Phase.DONE:
            return state, ()
        presence, seen, gone = state.presence.observe(body, frame, config, th.absent_s)
        if gone is not None:
            return replace(state, presence=presence), [gone]
        state = replace(state, presence=presence)

        elbow = chin = None
        if body is not None and seen:
            elbow = _elbow(body)
            chin = chin_over_hands(body)
        valid = (
            elbow is not None
            and chin is not None
            and elbow <= th.max_elbow_deg
            and chin >= th.chin_clearance
        )

        if state.phase == Phase.WAITING:
            # Where the floor is: the ankles of the examinee standing with the hands down
            # (with the hands up on the bar, a straight body may already be hanging).
            if body is not None and seen and hands_position(body) is False and is_standing(body):
                ankle = _ankle_y(body)
                if ankle is not None and ankle > state.floor_y:
                    state = replace(state, floor_y=ankle, floor_torso=body.torso_length())
            if not valid:
                return state, ()
            assert elbow is not None and chin is not None
            return replace(
                state,
                phase=Phase.HOLDING,
                start=frame,
                last_valid=frame,
                max_elbow=elbow,
                min_chin=chin,
            ), ()

        # Holding.
        verdicts: list[Verdict] = []
        if valid:
            assert elbow is not None and chin is not None
            state = replace(
                state,
                last_valid=frame,
                max_elbow=max(state.max_elbow, elbow),
                min_chin=min(state.min_chin, chin),
                invalid_since=-1,
                fault=VALID,
            )
        elif elbow is not None and chin is not None:
            if state.invalid_since < 0:
                fault = ARMS_STRAIGHTENED if elbow > th.max_elbow_deg else CHIN_BELOW_BAR
                state = replace(state, invalid_since=frame, fault=fault)
            if frame - state.invalid_since + 1 > th.grace_s * fps:
                return replace(state, phase=Phase.DONE), [_closing(th, state, fps)]

        # Whole seconds of valid hold, counted up to the last frame in position.
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

        on_floor = state.on_floor
        if state.floor_y >= 0.0 and body is not None:
            ankle = _ankle_y(body)
            on_floor = on_floor.update(
                frame,
                None
                if ankle is None
                else ankle >= state.floor_y - th.floor_margin * state.floor_torso,
            )
            if on_floor.reached(frame, fps, th.floor_s):
                verdicts.append(
                    forbidden(
                        frame,
                        "feet_on_ground",
                        "feet touched the ground during the hang",
                        on_floor_s=on_floor.seconds(frame, fps),
                        hold_s=held,
                    )
                )
        return replace(state, on_floor=on_floor), verdicts

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
        "min_chin_over_hands": rnd(state.min_chin, 3),
        "chin_limit": th.chin_clearance,
    }


EXERCISE = Armhang()
