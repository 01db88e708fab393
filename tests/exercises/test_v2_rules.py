"""pushup-2 and situp-2 beyond counting: body line, knees, hands, and the -3 rules they keep."""

from __future__ import annotations

import pytest
from khfsm.exercises import pushup2, situp2

from tests.exercises.kinematics import (
    Clip,
    drop,
    nobody,
    pushup_figure,
    reps,
    run,
    situp_figure,
    standing_figure,
)
from tests.exercises.kinematics3d import VIEWS, render


def pushups(values: list[float], view: str = "side", **figure: float) -> Clip:
    return render([pushup_figure(v, **figure) for v in values], VIEWS[view])


@pytest.mark.parametrize("view", ["side", "front", "45 deg"])
def test_sagging_hips_are_a_body_line_fault(view: str) -> None:
    summary = run(pushup2.EXERCISE, pushups(reps(170.0, 65.0, 2), view, sag=25.0))
    assert [r.status for r in summary.reps] == [(pushup2.BODY_NOT_STRAIGHT,)] * 2
    rep = summary.reps[0]
    assert rep.measurements["max_sag_deg"] > rep.measurements["sag_limit_deg"]


def test_a_small_sag_is_within_the_standard() -> None:
    summary = run(pushup2.EXERCISE, pushups(reps(170.0, 65.0, 2), sag=8.0))
    assert [r.status for r in summary.reps] == [(0,)] * 2


def test_pushups_from_the_knees_are_attempts_with_a_body_line_fault() -> None:
    summary = run(pushup2.EXERCISE, pushups(reps(170.0, 65.0, 2), knee=90.0))
    assert summary.total == 2 and summary.count == 0
    assert all(pushup2.BODY_NOT_STRAIGHT in r.status for r in summary.reps)
    assert summary.violation is None  # no -3: *-1's knees_down stop is gone


def test_standing_up_once_under_way_stops_the_pushups() -> None:
    clip = pushups(reps(170.0, 65.0, 1)) + render([standing_figure()] * 60, VIEWS["side"])
    summary = run(pushup2.EXERCISE, clip)
    assert summary.total == 1
    assert summary.violation is not None and summary.violation.code == "stood_up"


def test_standing_before_the_first_pushup_is_getting_ready() -> None:
    clip = render([standing_figure()] * 60, VIEWS["side"]) + pushups(reps(170.0, 65.0, 2))
    summary = run(pushup2.EXERCISE, clip)
    assert (summary.total, summary.count, summary.violation) == (2, 2, None)


def test_a_dropout_of_a_few_seconds_is_not_leaving_the_lane() -> None:
    clip = drop(pushups(reps(170.0, 65.0, 3, hold_rest_s=3.0)), 4.0, 5.0)
    summary = run(pushup2.EXERCISE, clip)
    assert summary.violation is None and summary.total >= 2


def test_an_empty_lane_stops_the_test_after_absent_s() -> None:
    th = pushup2.thresholds(5)
    clip = pushups(reps(170.0, 65.0, 1)) + nobody(th.absent_s + 1.0)
    summary = run(pushup2.EXERCISE, clip)
    assert summary.violation is not None and summary.violation.code == "left_lane"
    no_show = run(situp2.EXERCISE, nobody(situp2.thresholds(5).no_show_s + 1.0))
    assert no_show.violation is not None and no_show.violation.code == "no_person"


def test_situps_with_straight_legs_are_a_knee_fault() -> None:
    figures = [situp_figure(h, knee=170.0) for h in reps(150.0, 50.0, 2)]
    summary = run(situp2.EXERCISE, render(figures, VIEWS["side"]))
    assert summary.total == 2
    assert all(situp2.KNEES_NOT_BENT in r.status for r in summary.reps)


def test_situps_judged_at_the_top_and_pauses_lying_are_no_stop() -> None:
    hips = reps(150.0, 50.0, 1, hold_rest_s=1.0, tail_s=12.0) + reps(150.0, 50.0, 1)
    summary = run(situp2.EXERCISE, render([situp_figure(h) for h in hips], VIEWS["side"]))
    assert (summary.total, summary.count, summary.violation) == (2, 2, None)
    first = summary.reps[0]
    assert first.measurements["min_hip_deg"] <= first.measurements["up_limit_deg"]
    # Counted at the top: the verdict's end is the turn, well before the next lying phase.
    assert first.end_frame < 20 * 3.5


def test_standing_up_once_under_way_stops_the_situps() -> None:
    figures = [situp_figure(h) for h in reps(150.0, 50.0, 1)] + [standing_figure()] * 60
    summary = run(situp2.EXERCISE, render(figures, VIEWS["side"]))
    assert summary.total == 1
    assert summary.violation is not None and summary.violation.code == "stood_up"
