"""Evidence bundle size and times for a 2-minute session (a script, not a test).

    KHFSM_KEYPOINT_CACHE=/path/to/cache .venv/bin/python benchmarks/bench_bundle.py [CLIP]

A session as a lane records it at 20 fps for Duration 122 (2,440 assessed frames): the real
keypoints of CLIP (default: the 4 slow push-ups of pushup_01, from the keypoint cache or
extracted once) looped to 2,440 frames and judged by the pushup rules, stored in a SQLite
store; its video written by the live recorder (`khfsm.server.recording.VideoRecorder`, the
same encoder settings) from CLIP's frames looped to 2,440 frames at 20 fps; a ruling appended.
Prints the bundle's size and what it is made of, and the time to export and to verify it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import av

from khfsm.domain.events import SessionEnded, SessionPrepared, SessionStarted
from khfsm.domain.run import judge_poses
from khfsm.offline.cache import cached_keypoints
from khfsm.registry import get_exercise
from khfsm.review.bundle import write_bundle
from khfsm.review.bundle_check import verify_bundle
from khfsm.review.decisions import record_decision
from khfsm.server.recording import VideoRecorder
from khfsm.store.sql import open_recorder

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "data" / "videos"
FPS = 20.0
FRAMES = 2440  # round(122 s * 20 fps)


def record_video(clip: Path, out: Path) -> tuple[str, int, int, int]:
    """CLIP's frames, sampled at 20 fps and looped, through the live recorder."""
    with av.open(str(clip)) as source:
        stream = source.streams.video[0]
        rate = float(stream.average_rate or 25)
        images = [frame.to_ndarray(format="bgr24") for frame in source.decode(stream)]
    step = rate / FPS
    sampled = [images[int(k * step)] for k in range(int(len(images) / step))]
    height, width = sampled[0].shape[:2]
    out.parent.mkdir(parents=True, exist_ok=True)
    recorder = VideoRecorder(out, FPS, width, height)
    recorder.open()
    for index in range(FRAMES):
        recorder.write(index, sampled[index % len(sampled)])
    evidence = recorder.close()
    return evidence.sha256, evidence.size, width, height


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "clip", nargs="?", default=str(VIDEOS / "pushup_01_div_perfect_pushup_2.mp4")
    )
    args = parser.parse_args()
    clip = Path(args.clip)
    cache = os.environ.get("KHFSM_KEYPOINT_CACHE") or str(REPO / ".pytest_cache" / "kp")
    keypoints = cached_keypoints(clip, FPS, cache)
    poses = keypoints.poses()
    looped = [poses[k % len(poses)] for k in range(FRAMES)]
    exercise = get_exercise("pushup")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        media = root / "media"
        started = time.perf_counter()
        sha256, size, width, height = record_video(clip, media / "video" / "session.mp4")
        encode_s = time.perf_counter() - started
        prepared = SessionPrepared(
            task="pushup",
            capture_id=1,
            level=5,
            fps=FPS,
            frames=FRAMES,
            source="rtsp://camera/lane1",
            video_path=str(media / "video" / "session.mp4"),
            engine_version="bench",
            rules_version=exercise.rules_version,
            frame_width=width,
            frame_height=height,
        )
        events = judge_poses(exercise, prepared, looped, started=SessionStarted())
        end = events[-1]
        assert isinstance(end, SessionEnded)
        events[-1] = end.sealed(sha256, size)
        recorder = open_recorder(f"sqlite:///{root / 'khfsm.sqlite'}", upgrade=True)
        recorder.append("bench", 0, events)
        record_decision(recorder, "bench", "judge", 1, "overturn", "benchmark ruling")

        out = root / "bundle.zip"
        started = time.perf_counter()
        info = write_bundle(recorder, media, "bench", out)
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        report = verify_bundle(out)
        verify_s = time.perf_counter() - started
        recorder.close()
        assert report.intact, report.findings

        print(f"2-minute session: {FRAMES} frames at {FPS:g} fps, {len(events) + 1} events")
        print(
            f"  counted {end.count}/{end.total}; video {width}x{height}, "
            f"encoded in {encode_s:.1f} s"
        )
        print(f"bundle: {out.stat().st_size / 1e6:.2f} MB (zip)")
        with zipfile.ZipFile(out) as archive:
            for item in archive.infolist():
                print(
                    f"  {item.filename:<14} {item.file_size / 1e6:8.2f} MB"
                    f" -> {item.compress_size / 1e6:8.2f} MB in the zip"
                )
        print(f"chain head {info.manifest['chain']['head']}")
        print(f"export {export_s:.2f} s, verify (hashes + chain + replay) {verify_s:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
