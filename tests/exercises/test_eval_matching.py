"""benchmarks/eval_clips.py: attempts matched one-to-one to labelled repetition windows."""

from __future__ import annotations

from benchmarks.eval_clips import labelled_view, match_attempts, metrics

REPS = [
    {"start_s": 1.0, "end_s": 3.0, "counted": True},
    {"start_s": 3.0, "end_s": 5.0, "counted": True},
    {"start_s": 5.0, "end_s": 6.0, "counted": False},
]


def test_each_window_takes_at_most_one_attempt() -> None:
    found = match_attempts([(1.1, 2.9), (1.5, 2.5), (3.2, 4.8)], REPS)
    assert (found["hits"], found["misses"], found["extras"]) == (2, 0, 1)


def test_uncounted_windows_absorb_attempts_without_being_hits() -> None:
    found = match_attempts([(1.1, 2.9), (5.1, 5.9)], REPS)
    assert (found["hits"], found["misses"], found["extras"]) == (1, 1, 0)
    assert found["uncounted_matched"] == 1


def test_label_slack_is_the_labels_timing_accuracy() -> None:
    assert match_attempts([(0.75, 0.95)], REPS)["hits"] == 1  # within 0.3 s before rep 1
    assert match_attempts([(0.2, 0.6)], REPS)["extras"] == 1


def test_metrics_and_views() -> None:
    assert metrics([(4, 4), (5, 4), (2, 4)]) == {"exact": 1 / 3, "obo": 2 / 3, "mae": 0.75 / 3}
    assert labelled_view({"view": "front, camera at ground level"}) == "front/back"
    assert labelled_view({"view": "side, studio; whole body"}) == "side"
    # Any mention of 3/4 or oblique in the first clause makes it oblique.
    assert labelled_view({"view": "side (3/4 from head end), camera ~1 m high"}) == "oblique"
    assert labelled_view({"view": "3/4 side, low camera"}) == "oblique"
