"""How the pose model's 3-D elbow angle differs from the true one (a script, not a test).

    .venv/bin/python benchmarks/elbow_bias.py [--videos DIR] [--cache-dir DIR] [--fps 20]

The `*-2` push-up limits are the exam standard's angles read in 3-D, so they need the 3-D
estimate's bias. Where the camera sees the arm side on (camera view "side": the body's
left-right axis along the line of sight) and the arm is clearly visible, the image-plane
elbow angle is the faithful measure (the arm moves in a plane parallel to the image); the
bias is the median of (3-D angle - image angle) over those frames, pooled over every clip
whatever its exercise, in two bands: flexed (image angle 60-100 deg, around the standard's
90) and extended (image angle >= 155 deg, around lockout).

It also prints the leave-one-clip-out range: the pooled median recomputed with each clip
left out in turn, which shows that no single clip decides the constant.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from khfsm.assess import cached_keypoints
from khfsm.domain.pose import Landmark as L

REPO = Path(__file__).resolve().parents[1]
ARMS = (
    (L.LEFT_SHOULDER, L.LEFT_ELBOW, L.LEFT_WRIST),
    (L.RIGHT_SHOULDER, L.RIGHT_ELBOW, L.RIGHT_WRIST),
)
BANDS = {"flexed": (60.0, 100.0), "extended": (155.0, 181.0)}
SIDE_MIN_DEG = 60.0  # exercises.common.world: side view
CLEAR_VIS = 0.9


def angles(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    u, v = a - b, c - b
    cos = (u * v).sum(-1) / np.maximum(
        np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1), 1e-9
    )
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def differences(
    landmarks: np.ndarray, world: np.ndarray, present: np.ndarray
) -> dict[str, np.ndarray]:
    lateral = world[:, L.LEFT_SHOULDER] - world[:, L.RIGHT_SHOULDER]
    side = np.degrees(np.arctan2(np.abs(lateral[:, 2]), np.abs(lateral[:, 0]))) >= SIDE_MIN_DEG
    out: dict[str, list[np.ndarray]] = {name: [] for name in BANDS}
    for a, b, c in ARMS:
        image = angles(landmarks[:, a, :2], landmarks[:, b, :2], landmarks[:, c, :2])
        world_angle = angles(world[:, a], world[:, b], world[:, c])
        clear = present & side & (landmarks[:, [a, b, c], 3].min(axis=1) >= CLEAR_VIS)
        for name, (lo, hi) in BANDS.items():
            mask = clear & (image >= lo) & (image < hi)
            out[name].append((world_angle - image)[mask])
    return {name: np.concatenate(parts) for name, parts in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, default=REPO.parent / "shared" / "data" / "videos")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(
            os.environ.get("KHFSM_KEYPOINT_CACHE")
            or REPO / ".pytest_cache" / "d" / "khfsm-keypoints"
        ),
    )
    parser.add_argument("--fps", type=float, default=20.0)
    args = parser.parse_args(argv)
    labels = json.loads((args.videos / "labels.json").read_text())["videos"]
    per_clip: dict[str, dict[str, np.ndarray]] = {}
    for label in labels:
        kp = cached_keypoints(args.videos / label["file"], args.fps, args.cache_dir)
        per_clip[label["file"]] = differences(kp.landmarks, kp.world, kp.present)
    for band in BANDS:
        pooled = np.concatenate([d[band] for d in per_clip.values()])
        loo = [
            float(np.median(np.concatenate([d[band] for k, d in per_clip.items() if k != left])))
            for left in per_clip
        ]
        clips = sum(1 for d in per_clip.values() if d[band].size)
        print(
            f"{band:8}: 3-D minus image elbow angle, median {np.median(pooled):+.1f} deg over "
            f"{pooled.size} frames of {clips} clips; leave-one-clip-out "
            f"{min(loo):+.1f} .. {max(loo):+.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
