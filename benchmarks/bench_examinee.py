"""What choosing the examinee costs: pose per frame with and without the examinee rule.

    .venv/bin/python benchmarks/bench_examinee.py [--videos DIR] [--frames 200] [CLIP ...]

For each clip (default: the two-person clips and one single-person clip), the first
`--frames` assessed frames at 20 fps go through a PoseTracker with the examinee rule
(`khfsm.vision.examinee`) and through one following MediaPipe's first-ranked detection, and
the script prints the mean time per frame, the detector and landmark-model runs per frame,
and the examinee changes the rule reported. Single-threaded, one intra-op thread.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from khfsm.assess import sampled_frames
from khfsm.vision.pose import PoseModels, PoseTracker, load_pose_models

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEOS = REPO.parent / "shared" / "data" / "videos"
DEFAULT_CLIPS = (
    "situp_24_junghoonji_girls.mp4",
    "pushup_27_alvolate_twopeople.mp4",
    "pullup_23_davide_twopeople.mp4",
    "pushup_01_div_perfect_pushup_2.mp4",
)


class CountingModels(PoseModels):
    """The real models, counting the images each one is run on."""

    def __init__(self, models: PoseModels) -> None:
        super().__init__(models.detector, models.landmarker)
        self.detected = 0
        self.landmarked = 0

    def detect(self, frames: Sequence[Any]) -> Any:
        self.detected += len(frames)
        return super().detect(frames)

    def landmarks(self, frames: Sequence[Any], rois: Sequence[Any]) -> Any:
        self.landmarked += len(frames)
        return super().landmarks(frames, rois)


def run(models: PoseModels, frames: list[Any], rule: bool) -> tuple[float, float, float, list[str]]:
    counting = CountingModels(models)
    tracker = PoseTracker(counting, examinee_rule=rule)
    changes = []
    start = time.perf_counter()
    for k, frame in enumerate(frames):
        step = tracker.step(frame)
        if step.examinee is not None:
            changes.append(f"{step.examinee.change.value}@{k}")
    elapsed = time.perf_counter() - start
    n = len(frames)
    return 1e3 * elapsed / n, counting.detected / n, counting.landmarked / n, changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", default=list(DEFAULT_CLIPS))
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    models = load_pose_models(threads=1)
    print(f"{'clip':<36} {'rule':<9} {'ms/frame':>8} {'det/fr':>7} {'lmk/fr':>7}  changes")
    for clip in args.clips:
        frames = []
        for k, frame in sampled_frames(args.videos / clip, 20.0):
            if k >= args.frames:
                break
            if not frames or frame is not frames[-1]:
                frames.append(frame)
        run(models, frames[:5], True)  # warm-up
        for rule in (False, True):
            ms, det, lmk, changes = run(models, frames, rule)
            name = "examinee" if rule else "mediapipe"
            shown = " ".join(changes[:6]) + (" ..." if len(changes) > 6 else "")
            print(f"{clip[:36]:<36} {name:<9} {ms:8.1f} {det:7.2f} {lmk:7.2f}  {shown}")


if __name__ == "__main__":
    main()
