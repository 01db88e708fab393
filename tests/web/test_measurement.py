"""The review plot's measurement (`khfsm.web.measurement`) on real clips of every exercise
with a plot: the cached pose keypoints of a clip judged by the installed rules, as a live
session would be, then the series read back from its events.

The series must be the signal the rules judged: each repetition's judged extreme (stored in
its verdict) is the curve's extreme within the repetition, up to the detector's 3-frame
median filter, and the threshold lines are the rules' own for the level.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from khfsm.domain.events import Event, RepCounted, SessionPrepared, SessionStarted
from khfsm.domain.run import judge_poses
from khfsm.registry import get_exercise
from khfsm.web.measurement import SPECS, measurement_series

pytestmark = pytest.mark.video

FPS = 20.0
CLIPS = {
    "pushup": "pushup_01_div_perfect_pushup_2.mp4",
    "situp": "situp_01_joelo_situp.mp4",
    "pullup": "pullup_01_div_pull_up-test.mp4",
    "squat": "squat_01_rjsong_squat2_front.mp4",
}


def judged_session(videos: Path, task: str, level: int = 5) -> list[Event]:
    from khfsm.offline.cache import cached_keypoints

    cache = os.environ.get("KHFSM_KEYPOINT_CACHE") or tempfile.mkdtemp(prefix="khfsm-kp-")
    keypoints = cached_keypoints(videos / CLIPS[task], FPS, cache)
    poses = list(keypoints.poses())
    exercise = get_exercise(task)
    prepared = SessionPrepared(
        task=task,
        capture_id=1,
        level=level,
        fps=FPS,
        frames=len(poses),
        source="clip",
        video_path="",
        engine_version="test",
        rules_version=exercise.rules_version,
        frame_width=keypoints.frame_width,
        frame_height=keypoints.frame_height,
    )
    return judge_poses(exercise, prepared, poses, started=SessionStarted())


@pytest.mark.parametrize("task", sorted(CLIPS))
def test_each_repetition_is_judged_at_the_curves_extreme(videos: Path, task: str) -> None:
    events = judged_session(videos, task)
    reps = [event for event in events if isinstance(event, RepCounted)]
    assert len(reps) >= 3, f"{CLIPS[task]} should give several repetitions"
    series = measurement_series(events)
    spec = SPECS[series.rules_version]
    assert series.available and series.name == spec.name
    assert len(series.values) == len(series.frames) > 100
    assert sum(value is not None for value in series.values) > len(series.values) // 2
    for rep, judged in zip(reps, series.reps, strict=True):
        value = rep.measurements[spec.judged_key]
        assert judged["value"] == value and judged["index"] == rep.rep
        window = [
            v
            for frame, v in zip(series.frames, series.values, strict=True)
            if rep.start_frame <= frame <= rep.end_frame and v is not None
        ]
        # A median of three never goes below the raw minimum, and the raw minimum is at most
        # a jitter spike below it.
        assert min(window) <= value + 0.06, (rep.rep, min(window), value)
        assert min(window) >= value - 10.0, (rep.rep, min(window), value)


@pytest.mark.parametrize("level", [1, 5])
def test_threshold_lines_are_the_rules_own_for_the_level(videos: Path, level: int) -> None:
    from khfsm.exercises import situp2

    series = measurement_series(judged_session(videos, "situp", level))
    limits = situp2.thresholds(level)
    assert {line.name: line.value for line in series.thresholds} == {
        "up_limit_deg": round(limits.up_limit_deg, 2),
        "down_limit_deg": round(limits.down_limit_deg, 2),
    }


def test_rules_without_a_plot_say_so() -> None:
    prepared = SessionPrepared(
        task="armhang",
        capture_id=1,
        level=5,
        fps=FPS,
        frames=10,
        source="clip",
        video_path="",
        engine_version="test",
        rules_version="armhang-2",
    )
    series = measurement_series([prepared])
    assert not series.available and "armhang-2" in series.reason
    assert not measurement_series([]).available
