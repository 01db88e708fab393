"""Reusing an earlier keypoint extraction of the same video (for tests and benchmarks; the
live pipeline and `khfsm assess` always run pose).

The file name and its key are a stable format: caches shared between checkouts (e.g. the
one `KHFSM_KEYPOINT_CACHE` names) stay valid as long as the video, the pose models, the
rate and `EXTRACTION_VERSION` are the same.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from khfsm.hashing import file_sha256
from khfsm.offline.keypoints import (
    EXTRACTION_VERSION,
    Keypoints,
    ReportProgress,
    extract_keypoints,
)
from khfsm.vision.manifest import pose_model_hashes


def keypoints_cache_key(path: str | Path, fps: float) -> str:
    """What extracted keypoints depend on: the video's bytes, the pose models, the sampling
    rate and the extraction code's version."""
    models = "|".join(f"{name}={sha}" for name, sha in sorted(pose_model_hashes().items()))
    model_key = hashlib.sha256(models.encode()).hexdigest()[:16]
    return f"{file_sha256(path)[:16]}-{model_key}-{fps:g}fps-v{EXTRACTION_VERSION}"


def keypoints_cache_path(path: str | Path, fps: float, cache_dir: str | Path) -> Path:
    """Where `cached_keypoints` keeps the extraction of `path` at `fps` under `cache_dir`."""
    return Path(cache_dir) / f"{Path(path).stem}-{keypoints_cache_key(path, fps)}.npz"


def cached_keypoints(
    path: str | Path,
    fps: float,
    cache_dir: str | Path,
    progress: ReportProgress | None = None,
) -> Keypoints:
    """`extract_keypoints`, reusing an earlier extraction of the same video with the same
    models and rate stored under `cache_dir`."""
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    cached = keypoints_cache_path(path, fps, cache_dir)
    if cached.is_file():
        return Keypoints.load(cached)
    keypoints = extract_keypoints(path, fps, progress=progress)
    partial = cached.with_name(cached.stem + ".partial.npz")
    keypoints.save(partial)
    partial.replace(cached)  # atomic: a concurrent reader never sees half a file
    return keypoints
