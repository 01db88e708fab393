"""A lane's figures for /healthz: latency over its whole run and over its last frames."""

from __future__ import annotations

from khfsm.server.pipeline import RECENT_LATENCY_SAMPLES, LaneStats


def test_the_recent_latency_leaves_out_a_slow_start() -> None:
    """A start burst (every lane's first seconds also run the detector) dominates the p99 of
    the whole run; the p99 of the last frames is the lane as it runs now."""
    stats = LaneStats()
    stats.latency_s.extend([0.400] * 50 + [0.030] * 1000 + [0.060] * RECENT_LATENCY_SAMPLES)
    figures = stats.snapshot()
    assert figures["latency_ms_p99"] == 400.0
    assert figures["latency_ms_p99_recent"] == 60.0
    stats.latency_s.extend([0.250] * 3)  # 3 of the last 200 frames: more than 1 %
    assert stats.snapshot()["latency_ms_p99_recent"] == 250.0


def test_a_lane_without_frames_reports_zero_latency() -> None:
    figures = LaneStats().snapshot()
    assert figures["latency_ms_p99"] == 0.0 and figures["latency_ms_p99_recent"] == 0.0
