"""The attempt detector on 1-D signals with known answers, and the judge's verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest
from khfsm.exercises.common.attempts import Attempt, AttemptDetector, AttemptSpec
from khfsm.exercises.common.judging import Check, verdict
from khfsm.exercises.common.world import View, ViewVote, view_of

from tests.exercises.kinematics import path

FPS = 20.0
SPEC = AttemptSpec(min_excursion=20.0, complete_at=150.0)


def detect(values: list[float | None], spec: AttemptSpec = SPEC) -> dict[str, list[Attempt]]:
    det = AttemptDetector()
    found: dict[str, list[Attempt]] = {"turned": [], "ended": [], "abandoned": []}
    for frame, value in enumerate(values):
        det, events = det.step(spec, frame, value, FPS)
        if events.turned is not None:
            found["turned"].append(events.turned)
        if events.ended is not None:
            found["ended"].append(events.ended)
        if events.abandoned:
            found["abandoned"].append(Attempt(frame, frame, frame, 0, 0, 0, False, False))
    return found


def cycles(top: float, bottom: float, n: int) -> list[float | None]:
    segments: list[tuple[float, float]] = [(top, 1.0)]
    for _ in range(n):
        segments += [(bottom, 0.8), (top, 0.8), (top, 0.5)]
    return list(path(*segments, start=top, fps=FPS))


@pytest.mark.parametrize(("top", "bottom"), [(170.0, 65.0), (160.0, 120.0), (150.0, 125.0)])
def test_every_cycle_is_an_attempt_whatever_its_depth(top: float, bottom: float) -> None:
    found = detect(cycles(top, bottom, 4))
    assert len(found["ended"]) == 4
    # The median of three trims the single frame at the very bottom of an eased path.
    assert all(a.bottom == pytest.approx(bottom, abs=3.0) for a in found["ended"])
    assert all(a.complete for a in found["ended"])


@pytest.mark.parametrize("seed", range(5))
def test_noise_never_counts_twice_nor_alone(seed: int) -> None:
    rng = np.random.default_rng(seed)
    noisy: list[float | None] = [
        v + float(rng.normal(0.0, 4.0)) if v is not None else None for v in cycles(170, 70, 5)
    ]
    assert len(detect(noisy)["ended"]) == 5
    still: list[float | None] = [165.0 + float(rng.normal(0.0, 4.0)) for _ in range(400)]
    assert detect(still)["ended"] == []


def test_small_range_examinee_is_counted_and_fidgets_are_not() -> None:
    # A crunch-sized range (30 deg) that never reaches the standard's rest: each one ends when
    # the next begins (or, for the last, after the hold), and all three are attempts.
    crunches = cycles(140, 110, 3) + [140.0] * int(SPEC.hold_s * FPS + 2)
    ended = detect(crunches)["ended"]
    assert len(ended) == 3 and not any(a.complete for a in ended)
    values = cycles(170, 80, 3) + list(path((160.0, 0.3), (170.0, 0.3), start=170.0))
    assert len(detect(values)["ended"]) == 3  # a 10-deg fidget is nothing


def test_hysteresis_grows_with_the_examinees_own_range() -> None:
    det = AttemptDetector()
    assert det.hysteresis(SPEC) == SPEC.min_excursion
    for frame, value in enumerate(cycles(170, 50, 3)):
        det, _ = det.step(SPEC, frame, value, FPS)
    assert det.hysteresis(SPEC) == pytest.approx(0.25 * 120, abs=3)


def test_a_bounce_ends_one_attempt_and_starts_the_next() -> None:
    values = list(path((170, 1.0), (70, 0.8), (120, 0.6), (70, 0.6), (170, 0.8), start=170))
    ended = detect(values)["ended"]
    assert [a.complete for a in ended] == [False, True]
    assert ended[0].end == pytest.approx(120, abs=1) and not ended[1].from_rest


def test_stopping_short_of_the_standard_ends_the_attempt_after_a_hold() -> None:
    values = list(path((170, 1.0), (70, 0.8), (140, 0.8), (140, 2.0), start=170))
    ended = detect(values)["ended"]
    assert len(ended) == 1 and not ended[0].complete
    assert ended[0].end == pytest.approx(140, abs=1)


def test_a_signal_that_starts_at_the_bottom_is_not_credited() -> None:
    values = list(path((70, 0.2), (170, 0.8), (170, 1.0), start=70))
    assert detect(values) == {"turned": [], "ended": [], "abandoned": []}


def test_a_long_dropout_abandons_the_attempt_and_a_short_one_does_not() -> None:
    values = cycles(170, 70, 1)
    short = [None if 30 <= i < 40 else v for i, v in enumerate(values)]
    assert len(detect(short)["ended"]) == 1
    long = [None if 30 <= i < 55 else v for i, v in enumerate(values)]
    found = detect(long)
    assert found["ended"] == [] and len(found["abandoned"]) == 1


def test_a_cut_mid_attempt_abandons_it() -> None:
    values = cycles(170, 70, 1)
    cut = values[:32] + [170.0] * 40  # the shot changes while at the bottom
    found = detect(cut)
    assert found["ended"] == [] and len(found["abandoned"]) == 1


def test_verdict_lists_failed_codes_and_every_measurement() -> None:
    attempt = Attempt(10, 20, 30, 170.0, 100.0, 160.0, True, True)
    rep = verdict(
        attempt,
        (
            Check(311, False, {"min_elbow_deg": 100.0, "depth_limit_deg": 90.0}),
            Check(312, True, {"top_elbow_deg": 160.0}),
            Check(313, False, {"max_sag_deg": math.nan}),
        ),
        view=View.FRONT_BACK,
    )
    assert rep.status == (311, 313)
    assert (rep.start_frame, rep.end_frame) == (10, 30)
    assert dict(rep.measurements) == {
        "min_elbow_deg": 100.0,
        "depth_limit_deg": 90.0,
        "top_elbow_deg": 160.0,
        "camera_view": 2.0,
    }
    ok = verdict(attempt, (Check(311, True),), view=View.SIDE)
    assert ok.status == (0,)


def test_view_classes_and_the_session_vote() -> None:
    assert [view_of(a) for a in (0.0, 29.0, 45.0, 61.0, 90.0, -1.0)] == [
        View.FRONT_BACK,
        View.FRONT_BACK,
        View.OBLIQUE,
        View.SIDE,
        View.SIDE,
        View.UNKNOWN,
    ]
    vote = ViewVote()
    assert vote.view is View.UNKNOWN
    for v in (View.SIDE, View.OBLIQUE, View.OBLIQUE, View.UNKNOWN):
        vote = vote.add(v)
    assert vote.view is View.OBLIQUE
