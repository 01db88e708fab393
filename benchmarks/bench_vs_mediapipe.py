"""The pose step beside MediaPipe's own pipeline, on the same frames (a script, not a test).

    .venv/bin/python benchmarks/bench_vs_mediapipe.py --mediapipe-python /path/to/venv/bin/python

MediaPipe is not a dependency of khfsm (its models were converted to ONNX once, see
../shared/models/README.md); to compare, install the version the models came from in a
separate environment and name its interpreter:

    python3 -m venv /tmp/mpenv && /tmp/mpenv/bin/pip install mediapipe==0.10.21

Both sides decode the same clip, resize it to each resolution, and track the person frame
after frame on one core, each pinned to the same CPU (khfsm: `PoseTracker` with one ONNX
Runtime intra-op thread; MediaPipe: `solutions.pose.Pose` in video mode, model complexity 1,
the full landmark model khfsm ships). Printed per resolution: milliseconds per frame
(median and p90 over the frames, detector frames included) and the ratio khfsm / MediaPipe
(below 1: khfsm is faster). khfsm runs twice: on the BGR frames, and on the same frames'
Y'CbCr 4:2:0 planes, which is how a live lane hands a camera's picture to the models
(`khfsm.vision.picture`; the planes are made before the clock starts, as a decoder's are).
MediaPipe takes RGB, so its conversion from BGR is timed as part of its pipeline.
Run it on an otherwise idle machine; the two sides run one after the other, not at once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = REPO / ".." / "shared" / "data" / "videos" / "pushup_01_div_perfect_pushup_2.mp4"
RESOLUTIONS = {"720p": (1280, 720), "360p": (640, 360)}


def frames_of(clip: Path, count: int, size: tuple[int, int]) -> list[Any]:
    """The clip's first `count` frames as BGR images of `size` (both sides use OpenCV, which
    both environments have: the frames are identical)."""
    import cv2

    capture = cv2.VideoCapture(str(clip))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    capture.release()
    if not frames:
        raise SystemExit(f"no frame decodes from {clip}")
    return frames


def planes_of(frame: Any) -> Any:
    """A BGR frame as 4:2:0 planes (OpenCV's BT.601 studio-range conversion)."""
    import cv2

    from khfsm.vision.picture import YuvPicture

    height, width = frame.shape[:2]
    i420 = cv2.cvtColor(frame[: height // 2 * 2, : width // 2 * 2], cv2.COLOR_BGR2YUV_I420)
    rows = height // 2 * 2
    chroma = i420[rows:].reshape(2, rows // 2, width // 2)
    return YuvPicture(i420[:rows], chroma[0], chroma[1])


def time_khfsm(frames: list[Any]) -> list[float]:
    from khfsm.vision.pose import PoseTracker, load_pose_models

    tracker = PoseTracker(load_pose_models(threads=1, providers="cpu"))
    tracker.process(frames[0])  # warm-up (first run allocates)
    tracker.reset()
    samples = []
    for frame in frames:
        start = time.perf_counter()
        tracker.process(frame)
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def time_mediapipe(frames: list[Any]) -> list[float]:
    import cv2
    import mediapipe as mp

    samples = []
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
        pose.process(cv2.cvtColor(frames[0], cv2.COLOR_BGR2RGB))  # warm-up
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
        for frame in frames:
            start = time.perf_counter()
            # MediaPipe takes RGB: the conversion is part of its pipeline as a caller runs it.
            pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            samples.append((time.perf_counter() - start) * 1e3)
    return samples


def one_side(engine: str, clip: Path, count: int) -> dict[str, list[float]]:
    if engine == "mediapipe":
        return {
            name: time_mediapipe(frames_of(clip, count, size)) for name, size in RESOLUTIONS.items()
        }
    samples = {}
    for name, size in RESOLUTIONS.items():
        frames = frames_of(clip, count, size)
        samples[name] = time_khfsm(frames)
        samples[f"{name} planes"] = time_khfsm([planes_of(frame) for frame in frames])
    return samples


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument(
        "--mediapipe-python",
        help="a Python interpreter with mediapipe==0.10.21 installed (see above)",
    )
    parser.add_argument("--engine", choices=["khfsm", "mediapipe"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:  # one side, as a child process: print its samples as JSON
        # One core for each side: MediaPipe's TFLite/XNNPACK would otherwise spread over all.
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        print(json.dumps(one_side(args.engine, args.clip, args.frames)))
        return
    if not args.mediapipe_python:
        parser.error("--mediapipe-python is required (an interpreter with mediapipe installed)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    results = {}
    for engine, python in (("khfsm", sys.executable), ("mediapipe", args.mediapipe_python)):
        command = [python, __file__, "--engine", engine, "--clip", str(args.clip)]
        command += ["--frames", str(args.frames)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{engine} side failed:\n{done.stderr[-2000:]}")
        results[engine] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"clip {args.clip.name}, first {args.frames} frames, one core each, ms per frame")
    print(f"{'resolution':<11}{'khfsm p50/p90':>16}{'MediaPipe p50/p90':>20}{'ratio p50':>11}")
    for name in RESOLUTIONS:
        theirs = summary(results["mediapipe"][name])
        for ours_name, label in ((name, "BGR"), (f"{name} planes", "planes")):
            ours = summary(results["khfsm"][ours_name])
            print(
                f"{name:<5}{label:<7}{ours[0]:>7.1f} /{ours[1]:>6.1f}"
                f"{theirs[0]:>11.1f} /{theirs[1]:>6.1f}{ours[0] / theirs[0]:>11.2f}"
            )


if __name__ == "__main__":
    main()
