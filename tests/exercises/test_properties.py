"""Properties every rule module must have, on arbitrary (even absurd) keypoint streams:
pure and deterministic, never raising, finite measurements, verdicts that make sense."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from khfsm.domain.codes import is_fault
from khfsm.domain.exercise import MotionForbidden, RepJudged, RulesConfig
from khfsm.domain.pose import Pose
from khfsm.registry import installed_exercises
from tests.exercises.kinematics import Clip, pushup_figure, render, reps

TASKS = ["pushup", "situp", "pullup", "squat", "armhang"]


def test_all_five_are_installed_through_entry_points() -> None:
    installed = installed_exercises()
    for task in TASKS:
        exercise = installed[task]
        assert exercise.task == task and exercise.rules_version.startswith(task)
        assert exercise.faults and all(is_fault(code) for code in exercise.faults)
        digit = {"pushup": 1, "situp": 2, "pullup": 3, "squat": 4, "armhang": 6}[task]
        assert all(code // 10 == 30 + digit for code in exercise.faults)


def _random_clip(seed: int, frames: int, people: float) -> Clip:
    rng = np.random.default_rng(seed)
    poses: list[Pose | None] = []
    base = render([pushup_figure(170.0)]).poses[0]
    assert base is not None
    for _ in range(frames):
        if rng.random() > people:
            poses.append(None)
            continue
        lm = base.landmarks.copy()
        lm[:, 0] = rng.uniform(-200, 1500, 33)
        lm[:, 1] = rng.uniform(-200, 900, 33)
        lm[:, 3] = rng.uniform(0, 1, 33)
        if rng.random() < 0.05:
            lm[rng.integers(33), rng.integers(4)] = np.nan
        world = rng.normal(0, 0.5, (33, 3)).astype(np.float32)
        poses.append(Pose(landmarks=lm, world=world, score=float(rng.uniform(0.5, 1))))
    return Clip(poses)


@pytest.mark.parametrize("task", TASKS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), people=st.floats(0.0, 1.0), level=st.integers(1, 5))
def test_any_stream_gives_sane_deterministic_verdicts(
    task: str, seed: int, people: float, level: int
) -> None:
    exercise = installed_exercises()[task]
    clip = _random_clip(seed, 120, people)
    config = RulesConfig(level=level, fps=20.0, frame_width=1280, frame_height=720)

    def play() -> list[object]:
        state = exercise.initial_state(config)
        out: list[object] = []
        for k, pose in enumerate(clip.poses):
            state, verdicts = exercise.step(config, state, k, pose)
            out.extend(verdicts)
        out.extend(exercise.finish(config, state, len(clip.poses)))
        return out

    first, second = play(), play()
    assert first == second  # pure: the same stream, the same verdicts
    for verdict in first:
        assert isinstance(verdict, RepJudged | MotionForbidden)
        for value in verdict.measurements.values():
            assert isinstance(value, float) and math.isfinite(value)
        if isinstance(verdict, RepJudged):
            assert verdict.status == (0,) or all(c in exercise.faults for c in verdict.status)
            assert 0 <= verdict.start_frame <= verdict.end_frame < len(clip.poses) + 1


@pytest.mark.parametrize("task", TASKS)
def test_step_does_not_mutate_its_state(task: str) -> None:
    exercise = installed_exercises()[task]
    config = RulesConfig(level=5, fps=20.0, frame_width=1280, frame_height=720)
    clip = render([pushup_figure(v) for v in reps(170.0, 65.0, 2)])
    state = exercise.initial_state(config)
    for k, pose in enumerate(clip.poses):
        snapshot = repr(state)
        new_state, _ = exercise.step(config, state, k, pose)
        assert repr(state) == snapshot
        state = new_state
