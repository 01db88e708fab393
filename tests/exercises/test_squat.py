"""Squat rules on synthetic keypoints with known answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from khfsm.exercises.squat import EXERCISE, LEANED_FORWARD, NOT_DEEP_ENOUGH, NOT_STOOD_UP

from tests.exercises.kinematics import (
    Camera,
    Clip,
    frames_of,
    nobody,
    path,
    pushup_figure,
    render,
    reps,
    run,
    squat_figure,
)

UP, DOWN = 175.0, 70.0


def squats(values: list[float], lean: float = 20.0, **kw: Any) -> Clip:
    return render(frames_of(values, lambda k: squat_figure(k, lean=lean)), **kw)


@pytest.mark.parametrize("seed", range(3))
def test_counts_clean_squats(seed: int) -> None:
    clip = squats(reps(UP, DOWN, 6), noise_px=2.5, rng=np.random.default_rng(seed))
    summary = run(EXERCISE, clip)
    assert (summary.total, summary.count) == (6, 6)
    assert summary.reps[0].measurements["min_knee_deg"] < 75.0


@pytest.mark.parametrize("camera", [Camera(scale=0.6), Camera(mirrored=True, near_left=False)])
def test_camera_placement_does_not_matter(camera: Camera) -> None:
    summary = run(EXERCISE, squats(reps(UP, DOWN, 3), camera=camera))
    assert (summary.total, summary.count) == (3, 3)


def test_half_squat_is_341() -> None:
    summary = run(EXERCISE, squats(reps(UP, 115.0, 2)))
    assert [rep.status for rep in summary.reps] == [(NOT_DEEP_ENOUGH,)] * 2


def test_level_1_accepts_a_shallower_squat() -> None:
    clip = squats(reps(UP, 110.0, 2))
    assert run(EXERCISE, clip, level=5).count == 0
    assert run(EXERCISE, clip, level=1).count == 2


def test_not_standing_up_between_squats_is_342() -> None:
    values = [UP] * 20 + path(
        (DOWN, 0.8), (125.0, 0.6), (DOWN, 0.6), (UP, 0.8), (UP, 1.0), start=UP
    )
    summary = run(EXERCISE, squats(values))
    assert [rep.status for rep in summary.reps] == [(NOT_STOOD_UP,), (0,)]


def test_leaning_far_forward_is_343() -> None:
    summary = run(EXERCISE, squats(reps(UP, DOWN, 2), lean=75.0))
    assert all(LEANED_FORWARD in rep.status for rep in summary.reps)
    assert summary.reps[0].measurements["lean_deg"] > 63.0


def test_left_the_lane() -> None:
    summary = run(EXERCISE, squats(reps(UP, DOWN, 2)) + nobody(3.5))
    assert summary.violation is not None and summary.violation.code == "left_lane"
    assert summary.total == 2


def test_walking_out_at_the_end_briefly_is_fine() -> None:
    summary = run(EXERCISE, squats(reps(UP, DOWN, 2)) + nobody(1.0))
    assert summary.violation is None


def test_falling_down_is_unallowed() -> None:
    lying = render([pushup_figure(170.0)] * 40)  # body horizontal on the floor
    summary = run(EXERCISE, squats(reps(UP, DOWN, 1)) + lying)
    assert summary.violation is not None and summary.violation.code == "fell"


def test_sitting_at_the_bottom_is_unallowed() -> None:
    values = [UP] * 20 + path((DOWN, 0.8), (DOWN, 5.0), start=UP)
    summary = run(EXERCISE, squats(values))
    assert summary.violation is not None and summary.violation.code == "rested_down"


def test_finish_judges_a_squat_stopped_at_the_bottom() -> None:
    values = [UP] * 20 + path((DOWN, 0.8), start=UP)
    summary = run(EXERCISE, squats(values), stop=True)
    assert [rep.status for rep in summary.reps] == [(NOT_STOOD_UP,)]
