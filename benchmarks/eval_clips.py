"""Rep-counting accuracy on the labelled real clips (a script, not a test).

    .venv/bin/python benchmarks/eval_clips.py [--videos DIR] [--level 5] [--fps 20]
                                              [--cache-dir DIR] [--json]

For every clip in labels.json: pose (cached under --cache-dir, default the tests' cache in
.pytest_cache, so a test run and this script share one extraction), then the clip's exercise
rules at the given level. Prints the per-clip table (label gt and gt_range, total attempts,
valid count, fault codes, how the session ended) and the summary metrics used by rep-counting
papers, for `total` and for `count` against the label's gt:

- exact: fraction of clips where the number equals gt;
- OBO (off-by-one accuracy): fraction with |number - gt| <= 1;
- MAE: mean of |number - gt| / gt (the normalised mean absolute error);
- in range: fraction within the label's [strict, lenient] gt_range.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from khfsm.assess import cached_keypoints, judge_keypoints
from khfsm.registry import get_exercise

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEOS = REPO.parent / "shared" / "data" / "videos"
DEFAULT_CACHE = Path(
    os.environ.get("KHFSM_KEYPOINT_CACHE") or REPO / ".pytest_cache" / "d" / "khfsm-keypoints"
)


def task_of(label: dict[str, Any]) -> str:
    """The tablet's Task name for a labelled clip (labels.json gives it as `task`)."""
    return str(label["task"])


def metrics(pairs: list[tuple[int, int]]) -> dict[str, float]:
    """(predicted, gt) pairs -> exact, OBO, MAE (normalised by gt)."""
    n = len(pairs)
    return {
        "exact": sum(p == g for p, g in pairs) / n,
        "obo": sum(abs(p - g) <= 1 for p, g in pairs) / n,
        "mae": sum(abs(p - g) / g for p, g in pairs) / n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--level", type=int, default=5, choices=range(1, 6))
    parser.add_argument("--fps", type=float, default=20.0)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--json", action="store_true", help="One JSON object instead of text.")
    args = parser.parse_args(argv)

    labels_file = args.videos / "labels.json"
    if not labels_file.is_file():
        print(f"no labels.json in {args.videos}: pass --videos DIR", file=sys.stderr)
        return 2
    labels = json.loads(labels_file.read_text())["videos"]

    rows: list[dict[str, Any]] = []
    for label in labels:
        path = args.videos / label["file"]
        exercise = get_exercise(task_of(label))
        started = time.perf_counter()
        keypoints = cached_keypoints(path, args.fps, args.cache_dir)
        pose_s = time.perf_counter() - started
        started = time.perf_counter()
        _, summary, _ = judge_keypoints(keypoints, exercise, args.level)
        rules_s = time.perf_counter() - started
        violation = summary.violation
        rows.append(
            {
                "clip": Path(label["file"]).stem,
                "task": exercise.task,
                "gt": label["gt"],
                "gt_range": label["gt_range"],
                "total": summary.total,
                "count": summary.count,
                "faults": {str(k): v for k, v in sorted(summary.faults.items())},
                "end_status": summary.end_status,
                "violation": None if violation is None else violation.code,
                "frames": summary.frames,
                "pose_s": round(pose_s, 2),
                "rules_us_per_frame": round(rules_s / max(summary.frames, 1) * 1e6, 1),
            }
        )

    totals = [(r["total"], r["gt"]) for r in rows]
    counts = [(r["count"], r["gt"]) for r in rows]
    summary_metrics = {
        "clips": len(rows),
        "level": args.level,
        "total": metrics(totals)
        | {
            "in_range": sum(lo <= r["total"] <= hi for r in rows for lo, hi in [r["gt_range"]])
            / len(rows)
        },
        "count": metrics(counts)
        | {
            "in_range": sum(lo <= r["count"] <= hi for r in rows for lo, hi in [r["gt_range"]])
            / len(rows)
        },
    }
    if args.json:
        print(json.dumps({"clips": rows, "summary": summary_metrics}, indent=1))
        return 0

    header = (
        f"{'clip':34} {'task':7} {'gt':>3} {'range':>7} {'total':>5} {'count':>5}  "
        f"{'faults':18} {'end':>4} {'violation':10} {'us/f':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        faults = " ".join(f"{k}x{v}" for k, v in r["faults"].items()) or "-"
        low, high = r["gt_range"]
        print(
            f"{r['clip'][:34]:34} {r['task']:7} {r['gt']:>3} {f'{low}-{high}':>7} "
            f"{r['total']:>5} {r['count']:>5}  {faults:18} {r['end_status']:>4} "
            f"{r['violation'] or '-':10} {r['rules_us_per_frame']:>5}"
        )
    print()
    for name in ("total", "count"):
        m = summary_metrics[name]
        print(
            f"{name:5}: exact {m['exact']:.0%}  OBO {m['obo']:.0%}  MAE {m['mae']:.3f}  "
            f"in gt_range {m['in_range']:.0%}  ({len(rows)} clips, level {args.level})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
