"""Sit-up rules on synthetic keypoints with known answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from khfsm.exercises.situp import EXERCISE, HANDS_OFF_HEAD, KNEES_NOT_BENT, NOT_DOWN, NOT_UP_ENOUGH

from tests.exercises.kinematics import (
    Camera,
    Clip,
    frames_of,
    nobody,
    path,
    render,
    reps,
    run,
    situp_figure,
    standing_figure,
)

DOWN, UP = 150.0, 50.0


def situps(values: list[float], hands: bool = True, knee: float = 90.0, **kw: Any) -> Clip:
    return render(
        frames_of(values, lambda h: situp_figure(h, hands_on_head=hands, knee=knee)), **kw
    )


@pytest.mark.parametrize("seed", range(3))
def test_counts_clean_situps_at_the_top(seed: int) -> None:
    clip = situps(reps(DOWN, UP, 5), noise_px=2.5, rng=np.random.default_rng(seed))
    summary = run(EXERCISE, clip)
    assert (summary.total, summary.count) == (5, 5)
    # Counted when the top is reached: the rep's end is before the examinee lies back down.
    first = summary.reps[0]
    assert first.end_frame <= 20 + round(0.8 * 20) + 2
    assert first.measurements["min_hip_deg"] <= 70.0


@pytest.mark.parametrize("camera", [Camera(scale=0.7), Camera(mirrored=True, near_left=False)])
def test_camera_placement_does_not_matter(camera: Camera) -> None:
    summary = run(EXERCISE, situps(reps(DOWN, UP, 3), camera=camera))
    assert (summary.total, summary.count) == (3, 3)


def test_not_sitting_up_far_enough_is_321() -> None:
    summary = run(EXERCISE, situps(reps(DOWN, 90.0, 2)))
    assert [rep.status for rep in summary.reps] == [(NOT_UP_ENOUGH,)] * 2


def test_not_lying_back_down_is_322() -> None:
    values = [DOWN] * 20 + path(
        (UP, 0.8), (100.0, 0.6), (UP, 0.6), (DOWN, 0.8), (DOWN, 1), start=DOWN
    )
    summary = run(EXERCISE, situps(values))
    assert [rep.status for rep in summary.reps] == [(0,), (NOT_DOWN,)]
    assert summary.reps[1].measurements["from_lying"] == 0.0


def test_hands_off_the_head_is_323() -> None:
    summary = run(EXERCISE, situps(reps(DOWN, UP, 2), hands=False))
    assert all(HANDS_OFF_HEAD in rep.status for rep in summary.reps)
    assert summary.reps[0].measurements["hands_off_s"] >= 0.3


def test_a_hand_keypoint_jumping_briefly_is_not_323() -> None:
    values = reps(DOWN, UP, 1)
    figures = [situp_figure(h) for h in values]
    # Four frames of the wrist far from the head on the way up (hidden, mis-placed).
    figures[25:29] = [situp_figure(values[i], hands_on_head=False) for i in range(25, 29)]
    summary = run(EXERCISE, render(figures))
    assert [rep.status for rep in summary.reps] == [(0,)]


def test_straight_legs_are_324() -> None:
    summary = run(EXERCISE, situps(reps(DOWN, UP, 2), knee=160.0))
    assert all(KNEES_NOT_BENT in rep.status for rep in summary.reps)


def test_level_1_accepts_a_lower_sit_up() -> None:
    clip = situps(reps(DOWN, 80.0, 2))
    assert run(EXERCISE, clip, level=5).count == 0
    assert run(EXERCISE, clip, level=1).count == 2


def test_left_the_lane() -> None:
    summary = run(EXERCISE, situps(reps(DOWN, UP, 1)) + nobody(3.5))
    assert summary.violation is not None and summary.violation.code == "left_lane"


def test_standing_up_is_unallowed() -> None:
    summary = run(EXERCISE, situps(reps(DOWN, UP, 1)) + render([standing_figure()] * 40))
    assert summary.violation is not None and summary.violation.code == "stood_up"


def test_resting_lying_down_is_unallowed_once_under_way() -> None:
    summary = run(EXERCISE, situps(reps(DOWN, UP, 1, tail_s=7.0)))
    assert summary.violation is not None and summary.violation.code == "rested_lying"
    assert summary.total == 1


def test_lying_before_the_first_sit_up_is_fine() -> None:
    summary = run(EXERCISE, situps(reps(DOWN, UP, 2, lead_s=8.0)))
    assert summary.violation is None and summary.count == 2


def test_finish_adds_nothing_for_an_unfinished_sit_up() -> None:
    values = [DOWN] * 20 + path((100.0, 0.5), start=DOWN)
    summary = run(EXERCISE, situps(values), stop=True)
    assert summary.total == 0 and summary.end_status == -1


def test_standing_before_the_first_sit_up_is_fine() -> None:
    clip = render([standing_figure()] * 40) + situps(reps(DOWN, UP, 2))
    summary = run(EXERCISE, clip)
    assert summary.violation is None and summary.count == 2
