"""Rep-counting accuracy on the labelled real clips (a script, not a test).

    .venv/bin/python benchmarks/eval_clips.py [--videos DIR] [--level 5] [--fps 20]
                                              [--rules newest|1|2|...] [--cache-dir DIR]
                                              [--json]

For every clip in labels.json: pose (cached under --cache-dir, default KHFSM_KEYPOINT_CACHE
or the tests' cache in .pytest_cache, so a test run and this script share one extraction),
then the clip's exercise rules at the given level: the newest installed rules version, or
`--rules N` for `<task>-N` (a task without that release falls back to its newest, shown in
the `rules` column). Prints

- per clip: label gt and gt_range, total attempts, valid count, fault codes, how the session
  ended, the camera view the rules recorded, and the attempts matched to the labelled
  repetition windows (`reps[]`): hits (a counted rep found), misses (a counted rep with no
  attempt), extras (an attempt matching no labelled rep; attempts matching a rep labelled
  `counted: false` are neither);
- per exercise and per camera view (as labelled: side, front/back, oblique, edited):
  exact, off-by-one (OBO), mean relative error (MAE, |n - gt| / gt) and in-range rate of
  `total`, the same for `count`, and the attempt matching totals.

Matching: an attempt spans [start, end] of its verdict; a labelled rep spans its window
widened by the labels' ±0.3 s; pairs are matched one-to-one by largest overlap first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from khfsm.assess import cached_keypoints, judge_keypoints
from khfsm.domain.exercise import Exercise
from khfsm.registry import get_exercise, installed_versions

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEOS = REPO.parent / "shared" / "data" / "videos"
DEFAULT_CACHE = Path(
    os.environ.get("KHFSM_KEYPOINT_CACHE") or REPO / ".pytest_cache" / "d" / "khfsm-keypoints"
)
LABEL_SLACK_S = 0.3  # the labels' stated timing accuracy
VIEW_NAMES = {0: "unknown", 1: "side", 2: "front/back", 3: "oblique"}


def task_of(label: dict[str, Any]) -> str:
    """The tablet's Task name for a labelled clip (labels.json gives it as `task`)."""
    return str(label["task"])


def labelled_view(label: dict[str, Any]) -> str:
    """The camera view class of a clip from its free-text `view` label: the first clause,
    oblique when it mentions 3/4 or oblique at all, else front/back or side as it says."""
    text = str(label.get("view", "")).lower()
    head = text.split(",")[0].split(";")[0]
    if "edit" in head or "multi-camera" in head or "studio white" in head:
        return "edited"
    if "oblique" in head or "3/4" in head:
        return "oblique"
    if "front" in head or "behind" in head or "rear" in head:
        return "front/back"
    if "side" in head:
        return "side"
    return "other"


def rules_for(task: str, wanted: str) -> Exercise:
    if wanted == "newest":
        return get_exercise(task)
    version = f"{task}-{wanted}"
    if version in installed_versions().get(task, {}):
        return get_exercise(task, version)
    return get_exercise(task)


def match_attempts(
    attempts: list[tuple[float, float]], reps: list[dict[str, Any]]
) -> dict[str, Any]:
    """One-to-one matching of attempts to labelled rep windows by largest overlap."""
    pairs: list[tuple[float, int, int]] = []
    for i, (a0, a1) in enumerate(attempts):
        for j, rep in enumerate(reps):
            lo = float(rep["start_s"]) - LABEL_SLACK_S
            hi = float(rep["end_s"]) + LABEL_SLACK_S
            overlap = min(a1, hi) - max(a0, lo)
            if overlap > 0:
                pairs.append((overlap, i, j))
    used_a: dict[int, int] = {}
    used_r: set[int] = set()
    for _, i, j in sorted(pairs, reverse=True):
        if i not in used_a and j not in used_r:
            used_a[i] = j
            used_r.add(j)
    counted = [j for j, rep in enumerate(reps) if rep.get("counted", True)]
    hits = sum(1 for j in counted if j in used_r)
    return {
        "hits": hits,
        "misses": len(counted) - hits,
        "extras": sum(1 for i in range(len(attempts)) if i not in used_a),
        "uncounted_matched": sum(1 for j in used_r if not reps[j].get("counted", True)),
        "labelled": len(counted),
        "match": {i: j for i, j in used_a.items()},
    }


def metrics(pairs: list[tuple[int, int]]) -> dict[str, float]:
    """(predicted, gt) pairs -> exact, OBO, MAE (normalised by gt)."""
    n = len(pairs)
    if n == 0:
        return {"exact": 0.0, "obo": 0.0, "mae": 0.0}
    return {
        "exact": sum(p == g for p, g in pairs) / n,
        "obo": sum(abs(p - g) <= 1 for p, g in pairs) / n,
        "mae": sum(abs(p - g) / g for p, g in pairs) / n,
    }


def evaluate(
    labels: list[dict[str, Any]], videos: Path, fps: float, cache: Path, rules: str, level: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for label in labels:
        exercise = rules_for(task_of(label), rules)
        keypoints = cached_keypoints(videos / label["file"], fps, cache)
        started = time.perf_counter()
        _, summary, _ = judge_keypoints(keypoints, exercise, level)
        rules_s = time.perf_counter() - started
        attempts = [(float(r.time[0]), float(r.time[1])) for r in summary.reps]
        views = Counter(
            int(r.measurements["camera_view"])
            for r in summary.reps
            if "camera_view" in r.measurements
        )
        violation = summary.violation
        rows.append(
            {
                "clip": Path(label["file"]).stem,
                "task": exercise.task,
                "rules": exercise.rules_version,
                "view": labelled_view(label),
                "seen_view": VIEW_NAMES[views.most_common(1)[0][0]] if views else "-",
                "gt": label["gt"],
                "gt_range": label["gt_range"],
                "total": summary.total,
                "count": summary.count,
                "faults": {str(k): v for k, v in sorted(summary.faults.items())},
                "end_status": summary.end_status,
                "violation": None if violation is None else violation.code,
                "matching": {
                    k: v
                    for k, v in match_attempts(attempts, label.get("reps", [])).items()
                    if k != "match"
                },
                "frames": summary.frames,
                "rules_us_per_frame": round(rules_s / max(summary.frames, 1) * 1e6, 1),
            }
        )
    return rows


# Tasks whose label counts whole seconds held, not attempts: the rules' count. Their total
# adds the one unfinished second that carries the fault which ended the hold.
HOLDS = {"armhang"}


def labelled_figure(row: dict[str, Any]) -> int:
    """The figure the clip's label counts: attempts (total), or whole seconds for a hold."""
    return int(row["count"] if row["task"] in HOLDS else row["total"])


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def block(group: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"clips": len(group)}
        for name in ("total", "count"):
            pairs = [(r[name], r["gt"]) for r in group]
            out[name] = metrics(pairs) | {
                "in_range": sum(r["gt_range"][0] <= r[name] <= r["gt_range"][1] for r in group)
                / max(len(group), 1)
            }
        for key in ("hits", "misses", "extras", "labelled"):
            out[key] = sum(r["matching"][key] for r in group)
        return out

    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_view: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_task[r["task"]].append(r)
        by_view[r["view"]].append(r)
    return {
        "all": block(rows),
        "by_task": {k: block(v) for k, v in sorted(by_task.items())},
        "by_view": {k: block(v) for k, v in sorted(by_view.items())},
    }


def _line(name: str, b: dict[str, Any]) -> str:
    t, c = b["total"], b["count"]
    return (
        f"{name:12} {b['clips']:>3}  total: in {t['in_range']:4.0%} exact {t['exact']:4.0%} "
        f"OBO {t['obo']:4.0%} MAE {t['mae']:.2f} | count: in {c['in_range']:4.0%} "
        f"exact {c['exact']:4.0%} MAE {c['mae']:.2f} | reps {b['hits']}/{b['labelled']} hit, "
        f"{b['misses']} missed, {b['extras']} extra"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--level", type=int, default=5, choices=range(1, 6))
    parser.add_argument("--fps", type=float, default=20.0)
    parser.add_argument("--rules", default="newest", help="newest, or N for <task>-N")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--task", default="", help="only clips of this task")
    parser.add_argument("--json", action="store_true", help="One JSON object instead of text.")
    args = parser.parse_args(argv)

    labels_file = args.videos / "labels.json"
    if not labels_file.is_file():
        print(f"no labels.json in {args.videos}: pass --videos DIR", file=sys.stderr)
        return 2
    labels = json.loads(labels_file.read_text())["videos"]
    if args.task:
        labels = [label for label in labels if task_of(label) == args.task]
    rows = evaluate(labels, args.videos, args.fps, args.cache_dir, args.rules, args.level)
    summary = summarise(rows)
    if args.json:
        print(json.dumps({"clips": rows, "summary": summary}, indent=1))
        return 0

    header = (
        f"{'clip':30} {'rules':9} {'view':10} {'seen':10} {'range':>5} {'tot':>3} {'cnt':>3} "
        f"{'hit':>3} {'mis':>3} {'ext':>3}  {'faults':20} {'end':>3} {'violation':11} {'us/f':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        faults = " ".join(f"{k}x{v}" for k, v in r["faults"].items()) or "-"
        low, high = r["gt_range"]
        flag = " " if low <= labelled_figure(r) <= high else "*"
        m = r["matching"]
        print(
            f"{r['clip'][:30]:30} {r['rules']:9} {r['view']:10} {r['seen_view']:10} "
            f"{f'{low}-{high}':>5}{flag}{r['total']:>3} {r['count']:>3} {m['hits']:>3} "
            f"{m['misses']:>3} {m['extras']:>3}  {faults[:20]:20} {r['end_status']:>3} "
            f"{r['violation'] or '-':11} {r['rules_us_per_frame']:>5}"
        )
    print("(* outside the labelled range: the total, or for a hold the count)\n")
    print(_line("all", summary["all"]))
    for name, b in summary["by_task"].items():
        print(_line(name, b))
    for name, b in summary["by_view"].items():
        print(_line(f"view {name}", b))
    print(f"(level {args.level}, rules {args.rules})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
