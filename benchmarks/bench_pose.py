"""Pose pipeline benchmark on this machine (a script, not a test).

    .venv/bin/python benchmarks/bench_pose.py [--clip VIDEO] [--frames 40] [--repeats 5]
    .venv/bin/python benchmarks/bench_pose.py --providers cuda   (onnxruntime-gpu)

Prints (on CPU):
1. per-frame latency of the full pipeline (pre/post-processing included) for tracking frames
   (landmark model on the previous frame's ROI) and re-detection frames (detector + landmarks);
2. throughput of tracking steps at batch sizes 1, 4, 8 with 1 and 2 intra-op threads, and with
   two batches in flight at once (PoseService workers=2, one intra-op thread each);
3. how many 20 fps lanes that sustains, from the best configuration;
4. the CPU work of a GPU batch of 16 frames around the models' runs (crops, decoding their
   outputs; the runs replayed), cropped in 1, 2 or 4 threads: on a GPU what a batch, and so
   every lane in it, waits for besides the GPU (also printed with --providers cuda).

With --providers cuda, section 2 measures the GPU path as `PoseService` runs it instead: I/O
binding (`khfsm.vision.batchrun`), full batches of 1 to 64 frames with
1, 2 or 4 batches in flight (threads of one process, so pre/post-processing shares its GIL),
each batch cropped in the threads a server gives it (`inference_plan`).

Frames come from a real clip (default: the first frames of a shared exercise video; else the
parity photos), taken as a live lane takes them (a video's pictures as their planes, see
`khfsm.vision.picture`). Timings are medians; the machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from khfsm.vision.batching import GPU_BATCH, inference_plan
from khfsm.vision.batchrun import ModelRunner
from khfsm.vision.media import open_video
from khfsm.vision.picture import Image
from khfsm.vision.pose import PoseModels, PoseTracker, Track, estimate_batch, load_pose_models

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = REPO / ".." / "shared" / "data" / "videos" / "pushup_01_div_perfect_pushup_2.mp4"
PARITY = REPO / ".." / "shared" / "models" / "parity" / "images"
LANE_FPS = 20.0


def load_frames(clip: Path, count: int) -> list[Image]:
    if clip.is_file():
        frames: list[Image] = []
        with open_video(clip) as (_, stream):
            for frame in stream:
                frames.append(frame.for_pose())
                if len(frames) == count:
                    break
        print(f"frames: {len(frames)} from {clip.name} ({frames[0].shape[1]}x{frames[0].shape[0]})")
        return frames
    photos = [cv2.imread(str(p)) for p in sorted(PARITY.glob("*.*")) if p.suffix != ".txt"]
    frames = [p for p in photos if p is not None]
    print(f"frames: {len(frames)} parity photos ({clip} not found)")
    return (frames * (count // len(frames) + 1))[:count]


def median_ms(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def tracking_rois(models: PoseModels, frames: list[Image]) -> list[Track | None]:
    """The tracking state (ROI, examinee) each frame starts from when the clip is tracked from
    its first frame (None: the frame runs the detector).

    A clip's first 2 s are the examinee's settling (`khfsm.vision.examinee`), where every
    `SETTLING_STRIDE`-th tracked frame also runs the detector: such a frame is None here too.
    Kept as a tracking frame, it made the throughput of "tracking steps" a quarter detector
    runs (the default 40 frames all lie in that window), about 20 % below what a lane runs
    once its examinee has settled, which is nearly all of a test."""
    tracker = PoseTracker(models)
    rois = []
    for frame in frames:
        track = tracker.track
        rois.append(track if track.roi is not None and not track.examinee.looking else None)
        tracker.process(frame)
    return rois


def latency(models: PoseModels, frames: list[Image], repeats: int) -> None:
    rois = tracking_rois(models, frames)
    tracked = [(f, r) for f, r in zip(frames, rois, strict=True) if r is not None]
    track_ms, detect_ms = [], []
    for frame, roi in tracked:
        track_ms.append(median_ms(partial(estimate_batch, models, [frame], [roi]), repeats))
        detect_ms.append(median_ms(partial(estimate_batch, models, [frame], [None]), repeats))
    print("\n1. per-frame latency, full pipeline, batch 1, 1 intra-op thread (median over frames)")
    print(f"   tracking frame    : {statistics.median(track_ms):6.1f} ms")
    print(f"   re-detection frame: {statistics.median(detect_ms):6.1f} ms")
    print(f"   frames tracked without a detector run in this clip: {len(tracked)}/{len(frames)}")


def throughput(
    models: PoseModels,
    frames: list[Image],
    rois: list[Track | None],
    batch: int,
    workers: int,
    seconds: float,
) -> float:
    """Frames per second of tracking steps over `seconds`, `workers` batches in flight."""
    pairs = [(f, r) for f, r in zip(frames, rois, strict=True) if r is not None]
    batches = [pairs[i : i + batch] for i in range(0, len(pairs) - batch + 1, batch)]
    estimate_batch(models, [f for f, _ in batches[0]], [r for _, r in batches[0]])  # warm-up
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    done = 0

    def worker(offset: int) -> None:
        nonlocal done
        k = offset
        while time.perf_counter() < deadline:
            job = batches[k % len(batches)]
            k += workers
            estimate_batch(models, [f for f, _ in job], [r for _, r in job])
            with lock:
                done += len(job)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done / (time.perf_counter() - start)


def paced_cost(
    models: PoseModels,
    frames: list[Image],
    rois: list[Track | None],
    workers: int,
    rate: float | None,
    seconds: float,
) -> float:
    """CPU seconds per tracking frame, one frame a batch (as a server runs them while its
    lanes keep up), `workers` threads running `rate` frames per second in all, each waiting
    for its next frame's time between runs as workers serving lanes do (None: back to back,
    as `throughput` runs them). Measured by the threads' own CPU time around each run.

    Why: on some machines a frame costs more CPU at a pace the lanes can sustain than back to
    back (a 2-core Intel Xeon VM: 14-16 ms against 11-13 ms, whether the threads sleep or spin
    between frames, and a batch of two did not recover it), so the lanes that a full-speed
    `throughput` implies are more than the cores carry at that pace."""
    tracked = [(f, r) for f, r in zip(frames, rois, strict=True) if r is not None]
    estimate_batch(models, [tracked[0][0]], [tracked[0][1]])  # warm-up
    spent = [0.0] * workers
    done = [0] * workers
    deadline = time.perf_counter() + seconds

    def worker(index: int) -> None:
        started = time.perf_counter()
        k = index
        while time.perf_counter() < deadline:
            frame, roi = tracked[k % len(tracked)]
            k += workers
            cpu = time.thread_time()
            estimate_batch(models, [frame], [roi])
            spent[index] += time.thread_time() - cpu
            done[index] += 1
            if rate:  # this worker's next frame is due at its share of the rate
                time.sleep(max(0.0, started + done[index] * workers / rate - time.perf_counter()))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(spent) / max(1, sum(done))


class ReplayedModel:
    """Stands in for a model when only the work around it is timed: runs it once per batch
    size, then hands back those outputs. On a GPU the runs cost the CPU little; what a batch
    then waits for is this work (crops, decoding the outputs), done on the CPU."""

    def __init__(self, runner: ModelRunner) -> None:
        self._runner = runner
        self._outputs: dict[int, list[np.ndarray]] = {}

    @property
    def io_binding(self) -> bool:
        return self._runner.io_binding

    def batch_of(self, count: int, frame: tuple[int, ...]) -> np.ndarray:
        return self._runner.batch_of(count, frame)

    def run(self, batch: np.ndarray, count: int | None = None) -> list[np.ndarray]:
        count = batch.shape[0] if count is None else count
        if count not in self._outputs:
            self._outputs[count] = self._runner.run(batch, count)
        return self._outputs[count]


AROUND_THREADS = (1, 2, 4)


def work_around_models(frames: list[Image], repeats: int) -> None:
    """A GPU batch's CPU work (crops, decoding the models' outputs; the runs replayed), by the
    threads that crop its frames (`khfsm.vision.fanout`, the server's KHFSM_CROP_THREADS)."""
    base = load_pose_models(threads=1)
    models = PoseModels(base.detector, base.landmarker)  # not the cached, shared one
    models.use_batching(GPU_BATCH)
    rois = tracking_rois(models, frames)
    pairs = [(f, r) for f, r in zip(frames, rois, strict=True) if r is not None]
    pairs = list(itertools.islice(itertools.cycle(pairs), GPU_BATCH))
    batch, tracks = [f for f, _ in pairs], [r for _, r in pairs]
    models.use_runners(*(ReplayedModel(runner) for runner in models.runners))
    print(
        f"\n4. a GPU batch's CPU work around the models ({GPU_BATCH} tracking frames, the "
        "models' outputs replayed; median ms per batch)"
    )
    for threads in AROUND_THREADS:
        if threads > (os.cpu_count() or 1):
            continue
        models.crop_in_threads(threads)
        ms = median_ms(partial(estimate_batch, models, batch, tracks), repeats)
        print(f"   cropped in {threads} thread(s): {ms:6.1f} ms = {ms / GPU_BATCH:.2f} ms a frame")
    models.crop_in_threads(1)


GPU_BATCHES = (1, 8, 16, 32, 64)
GPU_WORKERS = (1, 2, 4)


def gpu_throughput(models: PoseModels, frames: list[Image], seconds: float) -> dict:
    """Tracking frames per second on the GPU path, by (batch, workers)."""
    rois = tracking_rois(models, frames)
    pairs = [(f, r) for f, r in zip(frames, rois, strict=True) if r is not None]
    # repeated until the largest batch fills (the detector's frames are left out)
    pairs = list(itertools.islice(itertools.cycle(pairs), max(len(pairs), max(GPU_BATCHES))))
    fps = {}
    for batch in GPU_BATCHES:
        models.use_batching(batch)
        models.crop_in_threads(inference_plan(True, max_batch=batch).crop_threads)  # a server's
        for workers in GPU_WORKERS:
            fps[(batch, workers)] = throughput(
                models, [f for f, _ in pairs], [r for _, r in pairs], batch, workers, seconds
            )
    return fps


def main_gpu(args: argparse.Namespace) -> None:
    models = load_pose_models(threads=1, providers="cuda")
    if not models.on_gpu:
        raise SystemExit(
            "the CUDA provider did not start (onnxruntime-gpu and its CUDA/cuDNN libraries?): "
            f"providers available {ort.get_available_providers()}"
        )
    frames = load_frames(args.clip, max(args.frames, max(GPU_BATCHES)))
    latency(models, frames, args.repeats)
    print(
        "\n2. GPU throughput of tracking steps (frames/s, pre/post-processing included; "
        f"{args.seconds:.1f} s each, I/O binding, full batches)"
    )
    fps = gpu_throughput(models, frames, args.seconds)
    print("   batch   " + "   ".join(f"{w} in flight" for w in GPU_WORKERS))
    for batch in GPU_BATCHES:
        print(f"   {batch:5d}   " + "   ".join(f"{fps[(batch, w)]:11.1f}" for w in GPU_WORKERS))
    (batch, workers), best = max(fps.items(), key=lambda item: item[1])
    print(
        f"\n3. lanes at {LANE_FPS:.0f} fps one process sustains on this GPU (batch {batch}, "
        f"{workers} in flight): {best:.1f} / {LANE_FPS:.0f} = {int(best // LANE_FPS)} lanes"
    )
    work_around_models(frames, 3 * args.repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument(
        "--providers",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: measure the GPU path (onnxruntime-gpu) instead of the CPU configurations",
    )
    args = parser.parse_args()

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"onnxruntime {ort.__version__}, providers {ort.get_available_providers()}, "
        f"opencv {cv2.__version__}"
    )
    if args.providers == "cuda":
        main_gpu(args)
        return
    frames = load_frames(args.clip, args.frames)
    one = load_pose_models(threads=1, providers="cpu")
    latency(one, frames, args.repeats)
    rois = tracking_rois(one, frames)

    print(
        "\n2. throughput of tracking steps (frames/s, pre/post-processing included; "
        f"median of {args.rounds} interleaved rounds of {args.seconds:.1f} s)"
    )
    two = load_pose_models(threads=2, providers="cpu")
    configs = {
        (batch, name): (models, workers)
        for batch in (1, 4, 8)
        for name, models, workers in (("t1", one, 1), ("t2", two, 1), ("w2", one, 2))
    }
    samples: dict[tuple[int, str], list[float]] = {key: [] for key in configs}
    for _ in range(args.rounds):
        for key, (models, workers) in configs.items():
            samples[key].append(throughput(models, frames, rois, key[0], workers, args.seconds))
    fps = {key: statistics.median(values) for key, values in samples.items()}
    print("   batch   1 thread   2 threads   2 workers x 1 thread")
    for batch in (1, 4, 8):
        row = [fps[(batch, name)] for name in ("t1", "t2", "w2")]
        print(f"   {batch:5d}   {row[0]:8.1f}   {row[1]:9.1f}   {row[2]:20.1f}")
    best_key = max(fps, key=fps.__getitem__)
    best = fps[best_key]
    labels = {"t1": "1 intra-op thread", "t2": "2 intra-op threads", "w2": "2 workers x 1 thread"}

    print(f"\n3. lanes at {LANE_FPS:.0f} fps this machine sustains (tracking, best configuration:")
    print(f"   batch {best_key[0]}, {labels[best_key[1]]})")
    print(f"   {best:.1f} frames/s / {LANE_FPS:.0f} = {int(best // LANE_FPS)} lanes")
    print("   (each re-detection adds a detector run; with the person in view it is rare)")
    work_around_models(frames, 3 * args.repeats)


if __name__ == "__main__":
    main()
