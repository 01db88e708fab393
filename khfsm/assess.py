"""Offline assessment of video files: the public names, gathered from `khfsm.offline`.

Tests, benchmarks and integrators import from here; each name lives in the `khfsm.offline`
module of its concern (probe, sampling, keypoints, cache, assess).
"""

from khfsm.offline.assess import Appender, assess_video, judge_keypoints
from khfsm.offline.cache import cached_keypoints, keypoints_cache_key
from khfsm.offline.keypoints import (
    EXTRACTION_VERSION,
    Keypoints,
    PoseSource,
    ReportProgress,
    extract_keypoints,
)
from khfsm.offline.probe import AssessError, ProbedVideo, probe_video
from khfsm.offline.sampling import DEFAULT_FPS, expected_frames, sampled_frames

__all__ = [
    "DEFAULT_FPS",
    "EXTRACTION_VERSION",
    "Appender",
    "AssessError",
    "Keypoints",
    "PoseSource",
    "ProbedVideo",
    "ReportProgress",
    "assess_video",
    "cached_keypoints",
    "expected_frames",
    "extract_keypoints",
    "judge_keypoints",
    "keypoints_cache_key",
    "probe_video",
    "sampled_frames",
]
