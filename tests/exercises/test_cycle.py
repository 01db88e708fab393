"""The repetition cycle every *-1 rule module counts with, driven value by value: each
transition at its threshold, the attempt's record (start, extreme, goal frame, turn), and the
losses (a gap, a jump) that abandon a movement. Mutation testing showed the rule modules'
tests leave most of this unpinned."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from exercises.common.cycle import Cycle, CycleThresholds, Median3, Transition
from exercises.common.timers import Streak

FPS = 20.0
TH = CycleThresholds(rest=150.0, attempt=125.0, goal=90.0, rebound=35.0)
T = Transition


def drive(values: Sequence[float | None], th: CycleThresholds = TH) -> tuple[Cycle, list[T]]:
    """The cycle after `values` (one per frame, None: no value), and every transition."""
    cycle, seen = Cycle(), []
    for frame, value in enumerate(values):
        if value is not None:
            cycle, transition = cycle.step(th, frame, value, FPS)
            seen.append(transition)
    return cycle, seen


SETTLED = [170.0] * 3  # settle_s 0.15 s at 20 fps: three frames at rest


def test_rest_must_hold_before_anything_counts() -> None:
    cycle, _ = drive([170.0, 170.0])
    assert not cycle.active and cycle.last_rest == 0
    cycle, _ = drive(SETTLED)
    assert cycle.last_rest == 2
    # Seen first mid-movement: nothing begins until the rest position has settled.
    cycle, transitions = drive([80.0, 80.0, 170.0, 80.0])
    assert transitions == [T.NONE] * 4 and not cycle.active


def test_a_repetition_from_rest_to_the_goal_and_back() -> None:
    values = [*SETTLED, 140.0, 120.0, 89.0, 85.0, 100.0, 140.0, 151.0]
    cycle, transitions = drive(values)
    assert transitions == [T.NONE] * 3 + [T.STARTED, T.NONE, T.GOAL, T.NONE] + [T.NONE] * 2 + [
        T.ENDED_AT_REST
    ]
    assert not cycle.active and cycle.last_rest == 9
    before_end, _ = drive(values[:-1])
    assert (before_end.start, before_end.from_rest, before_end.attempted) == (2, True, True)
    assert (before_end.extreme, before_end.extreme_frame, before_end.goal_frame) == (85.0, 6, 5)
    assert (before_end.peak, before_end.peak_frame) == (140.0, 8)


def test_exactly_at_the_thresholds() -> None:
    # rest is >= rest, attempt is < attempt, goal is <= goal
    _, transitions = drive([*SETTLED, 150.0, 125.0, 150.0])
    assert transitions[-3:] == [T.NONE, T.STARTED, T.CANCELLED]  # never an attempt
    _, transitions = drive([*SETTLED, 124.9, 90.0, 120.0, 150.0])
    assert transitions[-4:] == [T.STARTED, T.GOAL, T.NONE, T.ENDED_AT_REST]
    cycle, transitions = drive([*SETTLED, 124.9, 90.1])
    assert T.GOAL not in transitions and cycle.goal_frame == -1 and cycle.attempted
    cycle, _ = drive([*SETTLED, 125.0])
    assert cycle.active and not cycle.attempted


def test_a_bounce_without_lockout_ends_one_attempt_and_begins_the_next() -> None:
    values = [*SETTLED, 120.0, 80.0, 116.0, 115.0, 80.0]  # up 36 deg, then down 36 again
    cycle, transitions = drive(values)
    assert transitions[-3:] == [T.NONE, T.NONE, T.ENDED_BY_REBOUND]
    assert cycle.active and not cycle.from_rest
    # Turning back by less than the rebound is the same attempt.
    _, transitions = drive([*SETTLED, 120.0, 80.0, 114.0, 100.0, 80.0])
    assert T.ENDED_BY_REBOUND not in transitions
    _, transitions = drive([*SETTLED, 120.0, 80.0, 116.0, 115.0, 82.0])
    assert T.ENDED_BY_REBOUND not in transitions  # down again by 34 only


def test_a_long_gap_mid_movement_abandons_it() -> None:
    values: list[float | None] = [*SETTLED, 120.0, 90.0, *[None] * 20, 95.0]
    cycle, transitions = drive(values)
    assert transitions[-1] is T.ABANDONED and not cycle.active
    short: list[float | None] = [*SETTLED, 120.0, 90.0, *[None] * 19, 95.0]
    cycle, transitions = drive(short)  # a gap of exactly max_gap_s goes on
    assert T.ABANDONED not in transitions and cycle.active


def test_a_jump_faster_than_a_body_abandons_the_movement() -> None:
    # 1000 deg/s at 20 fps is 50 deg a frame: 51 is a jump, 50 is a movement.
    cycle, transitions = drive([*SETTLED, 120.0, 69.0])
    assert transitions[-1] is T.ABANDONED and not cycle.active
    cycle, transitions = drive([*SETTLED, 120.0, 70.0])
    assert transitions[-1] is T.GOAL and cycle.active
    # At rest a jump is no abandonment, but the rest must settle again.
    cycle, transitions = drive([*SETTLED, 170.0, 100.0])
    assert transitions[-1] is T.NONE and not cycle.active


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="need rest > attempt > goal"):
        CycleThresholds(rest=120.0, attempt=120.0, goal=90.0, rebound=35.0)
    with pytest.raises(ValueError, match="need rest > attempt > goal"):
        CycleThresholds(rest=150.0, attempt=90.0, goal=90.0, rebound=35.0)
    with pytest.raises(ValueError, match="rebound must be positive"):
        CycleThresholds(rest=150.0, attempt=120.0, goal=90.0, rebound=0.0)
    CycleThresholds(rest=150.0, attempt=120.0, goal=90.0, rebound=0.1)


def test_median_of_three_removes_a_single_spike() -> None:
    median, out = Median3(), []
    for value in (10.0, 20.0, 90.0, 30.0, 40.0, 35.0, 35.0):
        median, filtered = median.push(value)
        out.append(filtered)
    assert out == [10.0, 20.0, 20.0, 30.0, 40.0, 35.0, 35.0]
    assert median.reset() == Median3()


def test_streak_counts_frames_inclusively() -> None:
    streak = Streak()
    for frame in range(10):
        streak = streak.update(frame, frame >= 4)
    assert streak.seconds(9, FPS) == pytest.approx(6 / FPS)
    assert streak.reached(9, FPS, 6 / FPS) and not streak.reached(9, FPS, 7 / FPS)
    assert streak.update(10, False).seconds(10, FPS) == 0.0
