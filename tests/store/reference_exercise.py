"""A tiny exercise for the store's tests, and a recorder of sessions driven through it.

Not a real exercise: a "rep" is the nose going below `DOWN_Y` and back above `UP_Y`; a rep
faster than `MIN_FRAMES` is invalid (code 391); a nose above the frame (y < 0) is unallowed
motion. Enough to make replay derive reps, faults, violations and ends from keypoints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from khfsm.domain.events import (
    Event,
    SessionPrepared,
    SessionStarted,
    StopRequested,
)
from khfsm.domain.exercise import MotionForbidden, RepJudged, RulesConfig, Verdict
from khfsm.domain.pose import Pose
from khfsm.domain.run import observations, run_session

DOWN_Y = 300.0
UP_Y = 200.0
MIN_FRAMES = 10
TOO_FAST = 391


@dataclass(frozen=True, slots=True)
class _State:
    down_since: int | None = None


@dataclass(frozen=True)
class ReferenceExercise:
    task: str = "reference"
    rules_version: str = "reference-1"
    code_digit: int = 9  # 39Y: a digit no built-in exercise uses
    push_code: int = 9999

    @property
    def faults(self) -> Mapping[int, str]:
        return {TOO_FAST: "too fast"}

    def initial_state(self, config: RulesConfig) -> Any:
        return _State()

    def step(
        self, config: RulesConfig, state: Any, frame: int, pose: Pose | None
    ) -> tuple[Any, Sequence[Verdict]]:
        if pose is None:
            return state, ()
        y = float(pose.landmarks[0, 1])
        if y < 0:
            return state, (MotionForbidden(frame, "left_frame", "left the frame", {"y": y}),)
        if state.down_since is None and y > DOWN_Y:
            return _State(down_since=frame), ()
        if state.down_since is not None and y < UP_Y:
            frames = frame - state.down_since
            status = (0,) if frames >= MIN_FRAMES else (TOO_FAST,)
            verdict = RepJudged(state.down_since, frame, status, {"frames": float(frames)})
            return _State(), (verdict,)
        return state, ()

    def finish(self, config: RulesConfig, state: Any, frame: int) -> Sequence[Verdict]:
        return ()


REFERENCE = ReferenceExercise()


def pose_at(nose_y: float, rng: np.random.Generator | None = None) -> Pose:
    rng = rng or np.random.default_rng(0)
    landmarks = rng.uniform(0, 640, size=(33, 5)).astype(np.float32)
    landmarks[:, 3:] = 0.9
    landmarks[0, 1] = nose_y
    world = rng.normal(0, 0.5, size=(33, 3)).astype(np.float32)
    return Pose(landmarks=landmarks, world=world, score=0.95)


def nose_track(reps: int, *, period: int = 40, fast_every: int = 0) -> list[float | None]:
    """Nose heights for `reps` down-up cycles (every `fast_every`-th one too fast)."""
    track: list[float | None] = [None, None]
    for rep in range(1, reps + 1):
        length = 6 if fast_every and rep % fast_every == 0 else period
        half = length // 2
        track += [150.0] * half + [350.0] * (length - half)
    track += [150.0, 150.0]
    return track


def prepared(
    frames: int, *, task: str = "reference", capture_id: int = 2, rules: str = "reference-1"
) -> SessionPrepared:
    return SessionPrepared(
        task=task,
        capture_id=capture_id,
        level=5,
        fps=20.0,
        frames=frames,
        source="rtsp://camera-2/stream",
        video_path="/videos/2.mp4",
        engine_version="0.1.0",
        rules_version=rules,
        models={"pose.onnx": "ab" * 32},
    )


def record_session(
    track: Sequence[float | None],
    *,
    exercise: Any = REFERENCE,
    frames: int | None = None,
    stop_at: int | None = None,
    capture_id: int = 2,
) -> list[Event]:
    """Drive a `Session` over the nose heights, as the pipeline would; its event stream."""
    total = frames if frames is not None else len(track)
    rng = np.random.default_rng(7)
    poses = [None if y is None else pose_at(y, rng) for y in track[:stop_at]]
    inputs: list[Event] = [
        prepared(total, task=exercise.task, capture_id=capture_id, rules=exercise.rules_version),
        SessionStarted(started_at="2025-01-01T08:00:00Z"),
        *observations(poses),
    ]
    if stop_at is not None and stop_at < len(track):
        inputs.append(StopRequested(frame=stop_at))
    return run_session(exercise, inputs, who=f"capture {capture_id}")
