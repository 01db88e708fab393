"""Pull-up rules on synthetic keypoints with known answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from khfsm.exercises.pullup import CHIN_NOT_OVER_BAR, EXERCISE, KIPPING, NOT_FROM_HANG

from tests.exercises.kinematics import (
    Camera,
    Clip,
    frames_of,
    hang_figure,
    nobody,
    path,
    render,
    reps,
    run,
    standing_figure,
)

HANG, TOP = 170.0, 30.0


def pullups(values: list[float], hip: float = 178.0, **kw: Any) -> Clip:
    return render(frames_of(values, lambda e: hang_figure(e, hip=hip)), **kw)


@pytest.mark.parametrize("seed", range(3))
def test_counts_clean_pullups_at_the_top(seed: int) -> None:
    clip = pullups(reps(HANG, TOP, 4), noise_px=2.0, rng=np.random.default_rng(seed))
    summary = run(EXERCISE, clip)
    assert (summary.total, summary.count) == (4, 4)
    assert summary.reps[0].measurements["chin_over_hands"] >= 0.05


@pytest.mark.parametrize("camera", [Camera(scale=0.8), Camera(mirrored=True)])
def test_camera_placement_does_not_matter(camera: Camera) -> None:
    summary = run(EXERCISE, pullups(reps(HANG, TOP, 3), camera=camera))
    assert (summary.total, summary.count) == (3, 3)


def test_chin_not_over_the_bar_is_331() -> None:
    summary = run(EXERCISE, pullups(reps(HANG, 80.0, 2)))
    assert [rep.status for rep in summary.reps] == [(CHIN_NOT_OVER_BAR,)] * 2


def test_half_rep_from_part_way_down_is_332() -> None:
    # Like pullup_03: a full rep, down only to ~110 deg, then pulled up again.
    values = [HANG] * 20 + path(
        (TOP, 0.8), (110.0, 0.7), (TOP, 0.7), (HANG, 1.0), (HANG, 1), start=HANG
    )
    summary = run(EXERCISE, pullups(values))
    assert [rep.status for rep in summary.reps] == [(0,), (NOT_FROM_HANG,)]
    assert summary.count == 1


def test_kipping_is_333() -> None:
    summary = run(EXERCISE, pullups(reps(HANG, TOP, 2), hip=100.0))
    assert all(KIPPING in rep.status for rep in summary.reps)


def test_level_1_accepts_a_lower_top() -> None:
    clip = pullups(reps(HANG, 45.0, 2))
    assert run(EXERCISE, clip, level=5).count == 0
    assert run(EXERCISE, clip, level=1).count == 2


def test_dead_hang_within_the_limit_is_fine() -> None:
    summary = run(EXERCISE, pullups(reps(HANG, TOP, 2, hold_rest_s=6.0)))
    assert summary.violation is None and summary.count == 2


def test_hanging_too_long_is_unallowed() -> None:
    summary = run(EXERCISE, pullups(reps(HANG, TOP, 1, tail_s=11.0)))
    assert summary.violation is not None and summary.violation.code == "hung_too_long"


def test_letting_go_of_the_bar_is_unallowed() -> None:
    summary = run(EXERCISE, pullups(reps(HANG, TOP, 2)) + render([standing_figure()] * 30))
    assert summary.violation is not None and summary.violation.code == "released_bar"
    assert summary.total == 2


def test_standing_before_jumping_to_the_bar_is_fine() -> None:
    clip = render([standing_figure()] * 40) + pullups(reps(HANG, TOP, 2))
    summary = run(EXERCISE, clip)
    assert summary.violation is None and summary.count == 2


def test_left_the_lane() -> None:
    summary = run(EXERCISE, pullups(reps(HANG, TOP, 1)) + nobody(3.5))
    assert summary.violation is not None and summary.violation.code == "left_lane"
