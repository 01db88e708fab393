"""Push-up rules on synthetic keypoints with known answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from khfsm.exercises.pushup import (
    BODY_NOT_STRAIGHT,
    EXERCISE,
    NOT_LOCKED_OUT,
    NOT_LOW_ENOUGH,
)

from tests.exercises.kinematics import (
    Camera,
    Clip,
    drop,
    frames_of,
    nobody,
    path,
    pushup_figure,
    render,
    reps,
    run,
    standing_figure,
)

TOP, BOTTOM = 170.0, 65.0


def pushups(values: list[float], sag: float = 0.0, **kw: Any) -> Clip:
    return render(frames_of(values, lambda e: pushup_figure(e, sag=sag)), **kw)


@pytest.mark.parametrize("n", [1, 3, 7])
def test_counts_clean_reps(n: int) -> None:
    summary = run(EXERCISE, pushups(reps(TOP, BOTTOM, n)))
    assert (summary.total, summary.count) == (n, n)
    assert summary.end_status == -2
    rep = summary.reps[0]
    assert rep.measurements["min_elbow_deg"] <= 66.0
    assert rep.measurements["depth_limit_deg"] == 90.0


@pytest.mark.parametrize("seed", range(5))
def test_noise_never_counts_twice(seed: int) -> None:
    rng = np.random.default_rng(seed)
    clip = pushups(reps(TOP, BOTTOM, 5, hold_goal_s=1.0, hold_rest_s=1.5), noise_px=3.0, rng=rng)
    summary = run(EXERCISE, clip)
    assert (summary.total, summary.count) == (5, 5)


def test_jitter_around_lockout_is_one_rep() -> None:
    # Hovering at 148-152 deg around the lockout threshold (150) after one rep.
    values = reps(TOP, BOTTOM, 1, tail_s=0.0) + [148.0, 152.0] * 20 + [TOP] * 20
    summary = run(EXERCISE, pushups(values))
    assert summary.total == 1


@pytest.mark.parametrize(
    "camera",
    [
        Camera(scale=0.5),
        Camera(scale=1.3, offset=(-150.0, -80.0)),
        Camera(mirrored=True),
        Camera(near_left=False, mirrored=True),
    ],
)
def test_camera_placement_does_not_matter(camera: Camera) -> None:
    summary = run(EXERCISE, pushups(reps(TOP, BOTTOM, 3), camera=camera))
    assert (summary.total, summary.count) == (3, 3)


def test_shallow_rep_is_311() -> None:
    summary = run(EXERCISE, pushups(reps(TOP, 110.0, 2)))
    assert summary.total == 2 and summary.count == 0
    assert all(rep.status == (NOT_LOW_ENOUGH,) for rep in summary.reps)
    assert summary.reps[0].measurements["min_elbow_deg"] > 100.0


def test_small_dip_is_not_an_attempt() -> None:
    summary = run(EXERCISE, pushups(reps(TOP, 135.0, 3)))
    assert summary.total == 0


def test_bounce_without_lockout_is_312() -> None:
    values = path((BOTTOM, 0.8), (125.0, 0.6), (BOTTOM, 0.6), (TOP, 0.8), (TOP, 1.0), start=TOP)
    values = [TOP] * 20 + values
    summary = run(EXERCISE, pushups(values))
    assert [rep.status for rep in summary.reps] == [(NOT_LOCKED_OUT,), (0,)]
    assert summary.reps[0].measurements["top_elbow_deg"] < 150.0


@pytest.mark.parametrize("sag", [25.0, -30.0])
def test_sagging_or_piked_body_is_313(sag: float) -> None:
    summary = run(EXERCISE, pushups(reps(TOP, BOTTOM, 2), sag=sag))
    assert summary.total == 2 and summary.count == 0
    assert all(BODY_NOT_STRAIGHT in rep.status for rep in summary.reps)
    key = "max_sag_deg" if sag > 0 else "max_pike_deg"
    assert (
        summary.reps[0].measurements[key]
        > summary.reps[0].measurements[key.replace("max_", "").replace("_deg", "_limit_deg")]
    )


def test_level_1_is_more_lenient() -> None:
    clip = pushups(reps(TOP, 100.0, 2))
    assert run(EXERCISE, clip, level=5).count == 0
    assert run(EXERCISE, clip, level=1).count == 2


def test_brief_dropout_mid_rep_still_counts() -> None:
    clip = drop(pushups(reps(TOP, BOTTOM, 3)), start_s=1.5, seconds=0.5)
    summary = run(EXERCISE, clip)
    assert summary.total == 3 and summary.violation is None


def test_long_loss_mid_rep_abandons_the_rep() -> None:
    clip = pushups(reps(TOP, BOTTOM, 2, hold_goal_s=2.0))
    # Lost from just after the first bottom until it is back up: not seen, not judged.
    clip = drop(clip, start_s=1.9, seconds=2.0)
    summary = run(EXERCISE, clip)
    assert summary.total == 1 and summary.violation is None


def test_entering_mid_movement_is_not_credited() -> None:
    # Found at the bottom, coming up: that half rep is not counted, the next full one is.
    values = path((TOP, 0.8), (TOP, 0.5), start=BOTTOM) + reps(TOP, BOTTOM, 1, lead_s=0.0)
    summary = run(EXERCISE, nobody(1.0) + pushups(values))
    assert summary.total == 1


def test_left_the_lane() -> None:
    summary = run(EXERCISE, pushups(reps(TOP, BOTTOM, 2)) + nobody(4.0))
    assert summary.total == 2
    assert summary.violation is not None and summary.violation.code == "left_lane"
    assert summary.end_status == -3


def test_absence_shorter_than_the_limit_is_fine() -> None:
    summary = run(EXERCISE, nobody(2.0) + pushups(reps(TOP, BOTTOM, 2)) + nobody(2.0))
    assert summary.violation is None and summary.total == 2


def test_standing_up_is_unallowed() -> None:
    stand = render([standing_figure()] * 40)
    summary = run(EXERCISE, pushups(reps(TOP, BOTTOM, 2)) + stand)
    assert summary.violation is not None and summary.violation.code == "stood_up"
    assert summary.total == 2


def test_standing_before_getting_into_position_is_fine() -> None:
    stand = render([standing_figure()] * 40)
    summary = run(EXERCISE, stand + pushups(reps(TOP, BOTTOM, 2)))
    assert summary.violation is None and summary.total == 2


def test_resting_on_the_knees_is_unallowed() -> None:
    kneel = render([pushup_figure(TOP, knee=90.0)] * 40)
    summary = run(EXERCISE, pushups(reps(TOP, BOTTOM, 1)) + kneel)
    assert summary.violation is not None and summary.violation.code == "knees_down"


def test_lying_at_the_bottom_is_unallowed() -> None:
    values = path((BOTTOM, 0.8), (BOTTOM, 6.0), start=TOP)
    summary = run(EXERCISE, pushups([TOP] * 20 + values))
    assert summary.violation is not None and summary.violation.code == "rested_down"
    assert summary.violation.measurements["bottom_s"] >= 4.0


def test_a_long_hold_at_the_bottom_within_the_limit_is_fine() -> None:
    summary = run(EXERCISE, pushups(reps(TOP, BOTTOM, 2, hold_goal_s=2.5)))
    assert summary.violation is None and summary.count == 2


def test_finish_judges_a_rep_stopped_at_the_bottom() -> None:
    values = [TOP] * 20 + path((BOTTOM, 0.8), (120.0, 0.5), start=TOP)
    summary = run(EXERCISE, pushups(values), stop=True)
    assert summary.total == 1 and summary.reps[0].status == (NOT_LOCKED_OUT,)
    assert summary.end_status == -1


def test_walking_in_after_the_start_is_not_leaving() -> None:
    summary = run(EXERCISE, nobody(6.0) + pushups(reps(TOP, BOTTOM, 2)))
    assert summary.violation is None and summary.count == 2


def test_nobody_ever_coming_into_view_stops_the_test() -> None:
    summary = run(EXERCISE, nobody(11.0))
    assert summary.violation is not None and summary.violation.code == "no_person"
    assert summary.violation.measurements["absent_s"] >= 10.0


def test_a_cut_that_jumps_the_keypoints_is_not_a_rep() -> None:
    # At the top, then (a cut) suddenly at the bottom, then coming up: no rep was seen.
    values = [TOP] * 20 + [BOTTOM] * 10 + path((TOP, 0.8), (TOP, 1.0), start=BOTTOM)
    summary = run(EXERCISE, pushups(values))
    assert summary.total == 0
    # ... and counting resumes normally afterwards.
    summary = run(EXERCISE, pushups(values + reps(TOP, BOTTOM, 2, lead_s=0.0)))
    assert summary.total == 2


# The depth threshold per level (pushup-1): elbows bent to at most this angle.
DEPTH_LIMIT_DEG = {1: 110.0, 2: 105.0, 3: 100.0, 4: 95.0, 5: 90.0}


def test_these_are_the_pushup_1_rules() -> None:
    assert EXERCISE.rules_version == "pushup-1"


@pytest.mark.parametrize("level", sorted(DEPTH_LIMIT_DEG))
@pytest.mark.parametrize("margin", [-1.0, 1.0])
def test_depth_just_past_the_limit_counts_and_just_short_is_311(level: int, margin: float) -> None:
    """One degree either side of the depth limit, at every level: the boundary itself, not
    a bottom far from it (a limit off by a few degrees must fail here)."""
    bottom = DEPTH_LIMIT_DEG[level] + margin
    summary = run(EXERCISE, pushups(reps(TOP, bottom, 2)), level=level)
    assert summary.total == 2
    for rep in summary.reps:
        assert rep.measurements["depth_limit_deg"] == DEPTH_LIMIT_DEG[level]
        assert abs(rep.measurements["min_elbow_deg"] - bottom) < 0.5  # the figure is exact
        assert rep.status == ((0,) if margin < 0 else (NOT_LOW_ENOUGH,))
    assert summary.count == (2 if margin < 0 else 0)
