"""What the exercise rules cost per frame (a script, not a test).

    .venv/bin/python benchmarks/bench_rules.py [--videos DIR] [--cache-dir DIR] [--repeat 3]

For every installed rules version of every task, the pure rules (`Exercise.step` over the
cached poses of the labelled clips of that task, no session, no store) are timed; the best of
`--repeat` runs is reported as microseconds per frame, with the share of a 20 fps frame
budget (50 ms) that it uses. A live lane runs one such step per frame; a replay runs them
back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from khfsm.assess import cached_keypoints
from khfsm.domain.exercise import RulesConfig
from khfsm.domain.pose import Pose
from khfsm.registry import installed_versions, version_order

REPO = Path(__file__).resolve().parents[1]
FRAME_BUDGET_US = 1e6 / 20.0


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
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    labels = json.loads((args.videos / "labels.json").read_text())["videos"]
    clips: dict[str, list[tuple[RulesConfig, list[Pose | None]]]] = {}
    for label in labels:
        kp = cached_keypoints(args.videos / label["file"], args.fps, args.cache_dir)
        config = RulesConfig(5, kp.fps, kp.frame_width, kp.frame_height)
        clips.setdefault(label["task"], []).append((config, kp.poses()))
    print(f"{'rules':10} {'frames':>7} {'us/frame':>9} {'of 50 ms':>9}")
    for task, versions in sorted(installed_versions().items()):
        for version in sorted(versions, key=version_order):
            exercise = versions[version]
            runs = clips.get(task, [])
            frames = sum(len(poses) for _, poses in runs)
            if not frames:
                continue
            best = float("inf")
            for _ in range(args.repeat):
                started = time.perf_counter()
                for config, poses in runs:
                    state = exercise.initial_state(config)
                    for k, pose in enumerate(poses):
                        state, _ = exercise.step(config, state, k, pose)
                best = min(best, time.perf_counter() - started)
            us = best / frames * 1e6
            print(f"{version:10} {frames:>7} {us:>9.1f} {us / FRAME_BUDGET_US:>9.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
