"""How much the pullup-2, squat-2 and armhang-2 results depend on each constant (a script).

    .venv/bin/python benchmarks/sensitivity_bar_squat.py [--videos DIR] [--cache-dir DIR]

Every constant of these rules comes from the exam standard or body mechanics, none from the
clips; this shows which ones the labelled clips are sensitive to. Each constant (the finding
constants of the module, and the Level 5 judging limits) is moved to 0.75x and 1.25x of its
value, one at a time, and the clips whose `total` and whose `count` fall within the labelled
range are counted, next to the baseline. (For the flexed-arm hang `count` is the score.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from khfsm.exercises import armhang2, pullup2, squat2

from khfsm.assess import Keypoints, cached_keypoints, judge_keypoints

REPO = Path(__file__).resolve().parents[1]
MODULES: dict[str, ModuleType] = {"pullup": pullup2, "squat": squat2, "armhang": armhang2}
# (module, name, is a Level 5 threshold field rather than a module constant)
CONSTANTS: list[tuple[ModuleType, str, bool]] = [
    (pullup2, "MIN_PULL_DEG", False),
    (pullup2, "hang_limit_deg", True),
    (pullup2, "chin_limit", True),
    (pullup2, "hip_limit_deg", True),
    (squat2, "MIN_SQUAT_DEG", False),
    (squat2, "MAX_SHIN_TILT_DEG", False),
    (squat2, "max_thigh_deg", True),
    (squat2, "stand_tolerance_deg", True),
    (armhang2, "max_elbow_deg", True),
    (armhang2, "chin_limit", True),
    (armhang2, "grace_s", True),
]


@contextmanager
def moved(module: Any, name: str, field: bool, factor: float) -> Iterator[float]:
    """`name` scaled by `factor` while the block runs; yields the value used."""
    if not field:
        original = getattr(module, name)
        setattr(module, name, original * factor)
        _clear(module)
        try:
            yield original * factor
        finally:
            setattr(module, name, original)
            _clear(module)
        return
    original_thresholds = module.thresholds
    base = original_thresholds(5)
    value = getattr(base, name) * factor
    changed = dataclasses.replace(base, **{name: value})
    module.thresholds = lambda level: changed
    module.thresholds.cache_clear = lambda: None
    _clear(module)
    try:
        yield value
    finally:
        module.thresholds = original_thresholds
        _clear(module)


def _clear(module: Any) -> None:
    module.thresholds.cache_clear()
    if hasattr(module, "attempt_spec"):
        module.attempt_spec.cache_clear()


def in_range(
    labels: list[dict[str, Any]], clips: dict[str, Keypoints], task: str
) -> tuple[int, int]:
    """Clips of `task` whose total, and whose count, fall within the labelled range."""
    totals = counts = 0
    for label in labels:
        if label["task"] != task:
            continue
        _, summary, _ = judge_keypoints(clips[label["file"]], MODULES[task].EXERCISE, 5)
        low, high = label["gt_range"]
        totals += low <= summary.total <= high
        counts += low <= summary.count <= high
    return totals, counts


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
    args = parser.parse_args(argv)
    labels = [
        label
        for label in json.loads((args.videos / "labels.json").read_text())["videos"]
        if label["task"] in MODULES
    ]
    clips = {
        label["file"]: cached_keypoints(args.videos / label["file"], 20.0, args.cache_dir)
        for label in labels
    }
    n = {task: sum(label["task"] == task for label in labels) for task in MODULES}
    for task in MODULES:
        totals, counts = in_range(labels, clips, task)
        print(f"baseline {task:8} total {totals}/{n[task]}  count {counts}/{n[task]}")
    for module, name, field in CONSTANTS:
        task = module.TASK
        cells = []
        for factor in (0.75, 1.25):
            with moved(module, name, field, factor) as value:
                totals, counts = in_range(labels, clips, task)
            cells.append(
                f"x{factor} ({value:g}): total {totals}/{n[task]} count {counts}/{n[task]}"
            )
        print(f"{module.RULES_VERSION:10} {name:20} " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
