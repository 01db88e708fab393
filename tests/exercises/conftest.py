"""Keypoints of the real clips, extracted once and cached.

Pose is the slow part (~20-30 ms a frame on one CPU core), so each clip's keypoints are
computed once per test session and kept in pytest's cache directory between sessions, keyed by
the clip's sha256, the pose models' sha256 (from the model manifest), the sampling rate and
the extraction version: a new model, a changed clip or changed sampling code never reuses
stale keypoints. `pytest --cache-clear` forces a fresh extraction.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from khfsm.assess import Keypoints, cached_keypoints
from tests.conftest import videos_dir

FPS = 20.0


def task_of(label: dict[str, Any]) -> str:
    """The tablet's Task name for a labelled clip (labels.json gives it as `task`)."""
    return str(label["task"])


def clip_names() -> list[str]:
    """The clips in labels.json, for parametrising at collection time; when the folder is
    absent one placeholder remains, whose test then skips saying why (never silently)."""
    directory = videos_dir()
    if directory is None:
        return ["<clips not found>"]
    data = json.loads((directory / "labels.json").read_text())
    return [entry["file"] for entry in data["videos"]]


@pytest.fixture(scope="session")
def clip_keypoints(request: pytest.FixtureRequest, videos: Path) -> Callable[[str], Keypoints]:
    """clip file name -> its keypoints at 20 fps (computed at most once per session)."""
    # KHFSM_KEYPOINT_CACHE lets several checkouts (and benchmarks/eval_clips.py) share one
    # extraction; the key inside the cache keeps stale keypoints from ever being reused.
    configured = os.environ.get("KHFSM_KEYPOINT_CACHE")
    cache_dir = (
        Path(configured) if configured else Path(request.config.cache.mkdir("khfsm-keypoints"))
    )
    memo: dict[str, Keypoints] = {}

    def get(name: str) -> Keypoints:
        if name not in memo:
            memo[name] = cached_keypoints(videos / name, FPS, cache_dir)
        return memo[name]

    return get
