"""How much the `*-2` totals depend on each constant (a script, not a test).

    .venv/bin/python benchmarks/sensitivity.py [--videos DIR] [--cache-dir DIR]

Every constant of pushup-2 and situp-2 comes from the exam standard or body mechanics, not
from the clips; this shows that none of them sits on a knife edge for the labelled clips:
each is moved to 0.75x and 1.25x of its value, one at a time, and the number of push-up and
sit-up clips whose `total` is within the labelled range is printed next to the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from khfsm.exercises import pushup2, situp2

from khfsm.assess import cached_keypoints, judge_keypoints

REPO = Path(__file__).resolve().parents[1]
CONSTANTS: list[tuple[Any, str]] = [
    (pushup2, "MIN_EXCURSION_DEG"),
    (pushup2, "IN_POSITION_MIN_DEG"),
    (situp2, "MIN_EXCURSION_DEG"),
    (situp2, "LYING_MIN_DEG"),
    (situp2, "TORSO_LIFT_MIN_DEG"),
]


@contextmanager
def moved(module: Any, name: str, factor: float) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, original * factor)
    module.thresholds.cache_clear()
    try:
        yield
    finally:
        setattr(module, name, original)
        module.thresholds.cache_clear()


def in_range(labels: list[dict[str, Any]], videos: Path, cache: Path) -> dict[str, int]:
    found = {"pushup": 0, "situp": 0}
    for label in labels:
        module = pushup2 if label["task"] == "pushup" else situp2
        kp = cached_keypoints(videos / label["file"], 20.0, cache)
        _, summary, _ = judge_keypoints(kp, module.EXERCISE, 5)
        low, high = label["gt_range"]
        found[label["task"]] += low <= summary.total <= high
    return found


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
        if label["task"] in ("pushup", "situp")
    ]
    n = {t: sum(label["task"] == t for label in labels) for t in ("pushup", "situp")}
    base = in_range(labels, args.videos, args.cache_dir)
    print(f"baseline: push-up {base['pushup']}/{n['pushup']}, sit-up {base['situp']}/{n['situp']}")
    for module, name in CONSTANTS:
        cells = []
        for factor in (0.75, 1.25):
            with moved(module, name, factor):
                got = in_range(labels, args.videos, args.cache_dir)
            value = getattr(module, name) * factor
            cells.append(
                f"x{factor} ({value:g}): {got['pushup']}/{n['pushup']}, {got['situp']}/{n['situp']}"
            )
        print(f"{module.RULES_VERSION:9} {name:20} " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
