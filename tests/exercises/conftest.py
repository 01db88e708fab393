"""Keypoints of the real clips, extracted once and cached.

Pose is the slow part (~20-30 ms a frame on one CPU core), so each clip's keypoints are
computed once per test session and kept in pytest's cache directory between sessions, keyed by
the clip's sha256, the pose models' sha256 (from the model manifest), the sampling rate and
the extraction version: a new model, a changed clip or changed sampling code never reuses
stale keypoints. `pytest --cache-clear` forces a fresh extraction.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from khfsm.assess import Keypoints, cached_keypoints
from khfsm.offline.cache import keypoints_cache_path
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
    extract_missing(sorted(videos / name for name in selected_clips(request.session)), cache_dir)
    memo: dict[str, Keypoints] = {}

    def get(name: str) -> Keypoints:
        if name not in memo:
            memo[name] = cached_keypoints(videos / name, FPS, cache_dir)
        return memo[name]

    return get


def selected_clips(session: pytest.Session) -> set[str]:
    """The clips this run's selected tests are parametrised with (`-k pushup_01` needs one)."""
    return {
        str(callspec.params["clip"])
        for item in session.items
        if (callspec := getattr(item, "callspec", None)) and "clip" in callspec.params
    }


def extract_missing(clips: list[Path], cache_dir: Path) -> None:
    """Extract the clips not in the cache yet, one process per core: a cold extraction of
    every clip takes ten minutes on one core of a slow 2-core machine, half of CI's time.
    Each process writes its clip's cache file (atomically); the tests then read them."""
    missing = [clip for clip in clips if not keypoints_cache_path(clip, FPS, cache_dir).is_file()]
    workers = min(len(missing), os.cpu_count() or 1)
    if workers < 2:
        return  # nothing to share out: the tests extract what they need as they go
    # Longest first, so no process is left with a long clip at the end. `spawn`: a fresh
    # interpreter per worker, not a fork of this one with ONNX Runtime's threads in it.
    missing.sort(key=lambda clip: clip.stat().st_size, reverse=True)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        for clip in missing:
            pool.submit(_extract_into, str(clip), str(cache_dir))
        # Leaving the block waits for every clip; an extraction that failed leaves no file,
        # and the test that needs it extracts it again and reports the error itself.


def _extract_into(clip: str, cache_dir: str) -> None:
    cached_keypoints(clip, FPS, cache_dir)
