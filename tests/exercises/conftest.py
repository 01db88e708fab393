"""Keypoints of the real clips, extracted once and cached.

Pose is the slow part (~20-30 ms a frame on one CPU core), so each clip's keypoints are
computed once per test session and kept in pytest's cache directory between sessions, keyed by
the clip's sha256, the pose models' sha256 (from the model manifest), the sampling rate and
the extraction version: a new model, a changed clip or changed sampling code never reuses
stale keypoints. `pytest --cache-clear` forces a fresh extraction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from khfsm.assess import EXTRACTION_VERSION, Keypoints, extract_keypoints, file_sha256
from tests.conftest import videos_dir

FPS = 20.0

TASKS = {"push-up": "pushup", "sit-up": "situp", "pull-up": "pullup"}


def task_of(label: dict[str, Any]) -> str:
    exercise = str(label["exercise"])
    return TASKS.get(exercise, "squat" if exercise.startswith("squat") else exercise)


def clip_names() -> list[str]:
    """The clips in labels.json, for parametrising at collection time; when the folder is
    absent one placeholder remains, whose test then skips saying why (never silently)."""
    directory = videos_dir()
    if directory is None:
        return ["<clips not found>"]
    data = json.loads((directory / "labels.json").read_text())
    return [entry["file"] for entry in data["videos"]]


def _models_key() -> str:
    from khfsm.vision.manifest import load_manifest

    manifest = load_manifest()
    parts = [f"{name}={manifest[name].sha256}" for name in ("pose_detection", "pose_landmark")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


@pytest.fixture(scope="session")
def clip_keypoints(request: pytest.FixtureRequest, videos: Path) -> Callable[[str], Keypoints]:
    """clip file name -> its keypoints at 20 fps (computed at most once per session)."""
    cache_dir = Path(request.config.cache.mkdir("khfsm-keypoints"))
    models = _models_key()
    memo: dict[str, Keypoints] = {}

    def get(name: str) -> Keypoints:
        if name in memo:
            return memo[name]
        path = videos / name
        key = f"{file_sha256(path)[:16]}-{models}-{FPS:g}fps-v{EXTRACTION_VERSION}"
        cached = cache_dir / f"{Path(name).stem}-{key}.npz"
        if cached.is_file():
            keypoints = Keypoints.load(cached)
        else:
            keypoints = extract_keypoints(path, FPS)
            tmp = cached.with_name(cached.stem + ".partial.npz")
            keypoints.save(tmp)
            tmp.replace(cached)
        memo[name] = keypoints
        return keypoints

    return get
