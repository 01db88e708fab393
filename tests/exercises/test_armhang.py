"""Flexed-arm hang rules on synthetic keypoints: seconds held, how the hold ended."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from khfsm.exercises.armhang import ARMS_STRAIGHTENED, CHIN_BELOW_BAR, EXERCISE

from tests.exercises.kinematics import (
    FLOOR_Y,
    TORSO,
    Clip,
    hang_figure,
    nobody,
    render,
    run,
    standing_figure,
)

HOLD = 30.0  # elbow angle in the hold


def hold(seconds: float, elbow: float = HOLD, **kw: Any) -> Clip:
    return render([hang_figure(elbow)] * round(seconds * 20), **kw)


def sinking(seconds: float, mouth_below: float = 0.3) -> Clip:
    """Arms still bent but the chin drops below the bar: the mouth `mouth_below` torso
    lengths under the hands."""
    f = hang_figure(HOLD)
    return render(
        [replace(f, head=(f.head[0], f.wrist[1] + mouth_below * TORSO))] * round(seconds * 20)
    )


def test_counts_whole_seconds_of_hold() -> None:
    summary = run(EXERCISE, hold(7.3, noise_px=1.5, rng=np.random.default_rng(1)))
    assert summary.count == 7 and summary.total == 7
    assert all(rep.status == (0,) for rep in summary.reps)
    assert [rep.measurements["hold_s"] for rep in summary.reps] == [float(i) for i in range(1, 8)]
    # one second each, consecutive
    assert summary.reps[1].start_frame == summary.reps[0].end_frame + 1


def test_chin_below_the_bar_ends_the_hold_with_361() -> None:
    summary = run(EXERCISE, hold(3.5) + sinking(2.0) + hold(3.0))
    assert summary.count == 3
    assert summary.reps[-1].status == (CHIN_BELOW_BAR,)
    assert 3.4 <= summary.reps[-1].measurements["hold_s"] <= 3.6
    assert summary.total == 4  # nothing counted after the hold ended, even a new hold


def test_straightened_arms_end_the_hold_with_362() -> None:
    summary = run(EXERCISE, hold(2.2) + hold(2.0, elbow=160.0))
    assert summary.count == 2 and summary.reps[-1].status == (ARMS_STRAIGHTENED,)


def test_a_brief_wobble_within_the_grace_time_does_not_end_the_hold() -> None:
    clip = hold(2.0) + hold(0.15, elbow=120.0) + hold(2.0)
    summary = run(EXERCISE, clip)
    assert summary.count == 4 and summary.total == 4


def test_getting_into_position_is_not_timed() -> None:
    clip = render([standing_figure(arms_up=True)] * 30) + hold(2.5)
    summary = run(EXERCISE, clip)
    assert summary.count == 2 and summary.reps[0].start_frame == 30


def test_feet_on_the_ground_is_unallowed() -> None:
    standing = render([standing_figure()] * 20)
    # Holding position, but low enough that the ankles are on the floor.
    low_bar = FLOOR_Y - (hang_figure(HOLD).ankle[1] - hang_figure(HOLD).wrist[1])
    supported = render([hang_figure(HOLD, bar_y=low_bar)] * 30)
    summary = run(EXERCISE, standing + hold(2.0) + supported)
    assert summary.violation is not None and summary.violation.code == "feet_on_ground"
    assert summary.count >= 2


def test_hanging_above_the_floor_is_fine() -> None:
    summary = run(EXERCISE, render([standing_figure()] * 20) + hold(4.0))
    assert summary.violation is None and summary.count == 4


def test_left_the_lane_during_the_hold() -> None:
    summary = run(EXERCISE, hold(1.5) + nobody(3.5))
    assert summary.violation is not None and summary.violation.code == "left_lane"


def test_walking_away_after_the_hold_is_not_a_violation() -> None:
    summary = run(EXERCISE, hold(2.5) + hold(1.0, elbow=165.0) + nobody(5.0))
    assert summary.violation is None and summary.count == 2


def test_level_1_is_more_lenient() -> None:
    clip = sinking(3.0, mouth_below=0.07)  # the mouth just under the bar
    assert run(EXERCISE, clip, level=5).count == 0
    assert run(EXERCISE, clip, level=1).count == 3
