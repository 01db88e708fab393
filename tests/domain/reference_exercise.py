"""A deliberately tiny exercise for testing the engine, not a real rule set.

A rep is the right wrist rising above the right shoulder (by `RAISE` pixels) and coming back
down. A rep whose peak height is under `HIGH` is judged with fault 391. Nobody in frame for
`ABSENT_FRAMES` frames in a row is unallowed motion. `finish` judges a rep in progress.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from khfsm.domain.exercise import MotionForbidden, RepJudged, RulesConfig, Verdict
from khfsm.domain.pose import Landmark, Pose

RAISE = 20.0
HIGH = 60.0
ABSENT_FRAMES = 10
FAULT_LOW = 391


@dataclass(frozen=True)
class State:
    up: bool = False
    start: int = 0
    peak: float = 0.0
    absent: int = 0


class ReferenceExercise:
    task = "reference"
    rules_version = "ref-1"
    code_digit = 9  # 39Y: a digit no built-in exercise uses
    push_code = 9999
    faults: ClassVar[dict[int, str]] = {FAULT_LOW: "wrist not raised high enough"}

    def initial_state(self, config: RulesConfig) -> State:
        return State()

    def step(
        self, config: RulesConfig, state: State, frame: int, pose: Pose | None
    ) -> tuple[State, Sequence[Verdict]]:
        if pose is None:
            absent = state.absent + 1
            if absent == ABSENT_FRAMES:
                return replace(state, absent=absent), [
                    MotionForbidden(frame, "left_lane", "examinee left the lane")
                ]
            return replace(state, absent=absent), []
        height = float(pose.xy(Landmark.RIGHT_SHOULDER)[1] - pose.xy(Landmark.RIGHT_WRIST)[1])
        state = replace(state, absent=0)
        if not state.up and height > RAISE:
            return replace(state, up=True, start=frame, peak=height), []
        if state.up and height > RAISE:
            return replace(state, peak=max(state.peak, height)), []
        if state.up:
            return replace(state, up=False), [self._judge(state, frame)]
        return state, []

    def finish(self, config: RulesConfig, state: State, frame: int) -> Sequence[Verdict]:
        return [self._judge(state, frame)] if state.up else []

    def _judge(self, state: State, end: int) -> RepJudged:
        status = (0,) if state.peak >= HIGH else (FAULT_LOW,)
        return RepJudged(
            state.start, end, status, {"peak_px": round(state.peak, 3), "high_px": HIGH}
        )


EXERCISE = ReferenceExercise()


def pose_with_wrist_height(height: float, jitter: float = 0.0) -> Pose:
    """A standing figure whose right wrist is `height` px above the right shoulder."""
    landmarks = np.zeros((33, 5), dtype=np.float32)
    landmarks[:, 0] = np.linspace(100, 200, 33)
    landmarks[:, 1] = 300.0
    landmarks[:, 3:] = 0.99
    landmarks[Landmark.RIGHT_SHOULDER, 1] = 200.0
    landmarks[Landmark.RIGHT_WRIST, 1] = 200.0 - height + jitter
    world = np.zeros((33, 3), dtype=np.float32)
    return Pose(landmarks=landmarks, world=world, score=0.98)


def wrist_heights(reps: Sequence[float], rest: int = 5, up: int = 4) -> list[float]:
    """A trajectory with one rep per entry of `reps` (its peak height)."""
    heights: list[float] = [0.0] * rest
    for peak in reps:
        heights += [peak] * up + [0.0] * rest
    return heights
