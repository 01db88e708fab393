"""Offline assessment of a video file: pose -> rules -> store (what `khfsm assess` runs).

Two stages that tests and benchmarks can use separately:

* `extract_keypoints` reads the video, samples it at the assessment frame rate and runs the
  pose tracker on every sampled frame (the slow part, ~30 ms a frame on a CPU core);
* `judge_keypoints` drives a `Session` over those keypoints with an exercise's rules and
  hands the events to a recorder (fast: a replay-sized amount of work).

Sampling is by the video's own timeline: source frame i is at t_i = i / source_fps (the
container's nominal rate, as OpenCV reports it; per-packet timestamps are not used because
OpenCV's position of edited/variable-rate files is unreliable and the labels of the shared
clips are in frame_index / fps too), and assessed frame k is the first source frame with
t_i >= k / fps. The same file therefore always yields the same frames.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

import khfsm
from khfsm.domain.codec import EventRecord, decode, encode
from khfsm.domain.events import (
    Event,
    ExamineeChanged,
    ExamineeLost,
    FrameObserved,
    SessionPrepared,
    SessionStarted,
    StopRequested,
)
from khfsm.domain.exercise import Exercise
from khfsm.domain.fold import SessionSummary, fold
from khfsm.domain.pose import LANDMARK_COLUMNS, NUM_LANDMARKS, WORLD_COLUMNS, Pose
from khfsm.domain.session import Session
from khfsm.domain.timeline import assessed_until
from khfsm.hashing import file_sha256

DEFAULT_FPS = 20.0

# Bumped when the sampling or the conversion to Pose changes, so cached keypoints expire.
# 2: the examinee is chosen among the detector's candidates (khfsm.vision.examinee), and the
# changes of who is followed are kept with the keypoints.
EXTRACTION_VERSION = "2"

Progress = Callable[[int, int], None]  # (frames done, frames expected)


class AssessError(Exception):
    """The video cannot be assessed (missing, unreadable, no frames); says why in words."""


class PoseEstimateLike(Protocol):
    @property
    def landmarks(self) -> np.ndarray: ...  # float32 (33, 5) pixels

    @property
    def world(self) -> np.ndarray: ...  # float32 (33, 3) metres

    @property
    def score(self) -> float: ...


class PoseSource(Protocol):
    """What turns a frame into keypoints: `khfsm.vision.pose.PoseTracker` (or a test double).

    A source that also reports who it follows (PoseTracker) sets `examinee_change` after each
    frame; its changes are kept with the keypoints and recorded in the session.
    """

    def process(self, frame_bgr: np.ndarray) -> PoseEstimateLike | None: ...


class EventRecorder(Protocol):
    """The part of the store's recorder that assessment needs."""

    def append(self, session_id: str, first_seq: int, events: Sequence[Event]) -> None: ...


@dataclass(frozen=True, slots=True)
class VideoInfo:
    path: Path
    source_fps: float
    source_frames: int  # as the container declares it; may be approximate
    width: int
    height: int


@dataclass(frozen=True, slots=True, eq=False)
class Keypoints:
    """The pose of every assessed frame of one video (what the rules consume)."""

    fps: float
    frame_width: int
    frame_height: int
    landmarks: np.ndarray  # float32 (n, 33, 5); zeros where nobody was found
    world: np.ndarray  # float32 (n, 33, 3)
    scores: np.ndarray  # float32 (n,)
    present: np.ndarray  # bool (n,)
    # Changes of who is followed, each recorded just before its frame's keypoints.
    examinee: tuple[ExamineeChanged | ExamineeLost, ...] = ()

    def __len__(self) -> int:
        return int(self.present.shape[0])

    def pose(self, k: int) -> Pose | None:
        if not self.present[k]:
            return None
        return Pose(landmarks=self.landmarks[k], world=self.world[k], score=float(self.scores[k]))

    def poses(self) -> list[Pose | None]:
        return [self.pose(k) for k in range(len(self))]

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            fps=np.float64(self.fps),
            size=np.array([self.frame_width, self.frame_height], dtype=np.int64),
            landmarks=self.landmarks,
            world=self.world,
            scores=self.scores,
            present=self.present,
            examinee_types=np.array([type(e).__name__ for e in self.examinee], dtype=str),
            examinee_payloads=np.array([encode(e).payload for e in self.examinee], dtype=str),
        )

    @classmethod
    def load(cls, path: Path) -> Keypoints:
        with np.load(path) as data:
            width, height = (int(v) for v in data["size"])
            return cls(
                fps=float(data["fps"]),
                frame_width=width,
                frame_height=height,
                landmarks=data["landmarks"].astype(np.float32),
                world=data["world"].astype(np.float32),
                scores=data["scores"].astype(np.float32),
                present=data["present"].astype(bool),
                examinee=_examinee_events(data),
            )


def _examinee_events(data: Any) -> tuple[ExamineeChanged | ExamineeLost, ...]:
    if "examinee_types" not in data:
        return ()
    events = []
    for name, payload in zip(data["examinee_types"], data["examinee_payloads"], strict=True):
        event = decode(EventRecord(type=str(name), version=1, payload=str(payload), blob=None))
        assert isinstance(event, ExamineeChanged | ExamineeLost)
        events.append(event)
    return tuple(events)


def probe_video(path: str | Path) -> VideoInfo:
    import cv2

    path = Path(path)
    if not path.exists():
        raise AssessError(f"video not found: {path}")
    if not path.is_file():
        raise AssessError(f"not a video file: {path}")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise AssessError(f"cannot open video {path}: not a video OpenCV can read")
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if not math.isfinite(fps) or fps <= 0:
            raise AssessError(f"video {path} declares no frame rate; cannot place its frames")
        return VideoInfo(
            path=path,
            source_fps=fps,
            source_frames=int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
    finally:
        capture.release()


def expected_frames(info: VideoInfo, fps: float) -> int:
    """Assessed frames of a video whose container frame count is right."""
    if info.source_frames <= 0:
        return 0
    return assessed_until(0, fps, (info.source_frames - 1) / info.source_fps)


def sampled_frames(path: str | Path, fps: float = DEFAULT_FPS) -> Iterator[tuple[int, np.ndarray]]:
    """(k, BGR frame) for every assessed frame k; a source frame may serve several k when
    the video's own rate is below `fps`."""
    import cv2

    info = probe_video(path)
    if not fps > 0:
        raise AssessError(f"fps must be positive, got {fps}")
    capture = cv2.VideoCapture(str(info.path))
    try:
        k = 0
        i = 0
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            # Source frame i serves every k with (k-1)/fps < t_i and k / fps <= t_i.
            end = assessed_until(k, fps, i / info.source_fps)
            while k < end:
                yield k, frame
                k += 1
            i += 1
    finally:
        capture.release()


def extract_keypoints(
    path: str | Path,
    fps: float = DEFAULT_FPS,
    tracker: PoseSource | None = None,
    progress: Progress | None = None,
) -> Keypoints:
    """Run the pose tracker over the sampled frames of a video (a fresh tracker per video:
    tracking state must not leak from one video into the next)."""
    info = probe_video(path)
    if tracker is None:
        from khfsm.vision.pose import PoseTracker

        tracker = PoseTracker()
    process = tracker.process
    expected = expected_frames(info, fps)
    landmarks: list[np.ndarray] = []
    world: list[np.ndarray] = []
    scores: list[float] = []
    present: list[bool] = []
    examinee: list[ExamineeChanged | ExamineeLost] = []
    empty_l = np.zeros((NUM_LANDMARKS, LANDMARK_COLUMNS), dtype=np.float32)
    empty_w = np.zeros((NUM_LANDMARKS, WORLD_COLUMNS), dtype=np.float32)
    last_frame: np.ndarray | None = None
    last_result: tuple[np.ndarray, np.ndarray, float, bool] | None = None
    for k, frame in sampled_frames(info.path, fps):
        if frame is last_frame and last_result is not None:
            result = last_result  # the same source frame again: same pose, no second run
        else:
            estimate = process(frame)
            change = getattr(tracker, "examinee_change", None)
            if change is not None:
                examinee.append(change.as_event(k, frame.shape[1], frame.shape[0]))
            if estimate is None:
                result = (empty_l, empty_w, 0.0, False)
            else:
                result = (
                    np.asarray(estimate.landmarks, dtype=np.float32),
                    np.asarray(estimate.world, dtype=np.float32),
                    float(estimate.score),
                    True,
                )
            last_frame, last_result = frame, result
        landmarks.append(result[0])
        world.append(result[1])
        scores.append(result[2])
        present.append(result[3])
        if progress is not None:
            progress(k + 1, max(expected, k + 1))
    if not present:
        raise AssessError(f"video {info.path} has no readable frames")
    return Keypoints(
        fps=float(fps),
        frame_width=info.width,
        frame_height=info.height,
        landmarks=np.stack(landmarks),
        world=np.stack(world),
        scores=np.asarray(scores, dtype=np.float32),
        present=np.asarray(present, dtype=bool),
        examinee=tuple(examinee),
    )


def keypoints_cache_key(path: str | Path, fps: float) -> str:
    """What extracted keypoints depend on: the video's bytes, the pose models, the sampling
    rate and this module's extraction code."""
    models = "|".join(f"{name}={sha}" for name, sha in sorted(model_hashes().items()))
    model_key = hashlib.sha256(models.encode()).hexdigest()[:16]
    return f"{file_sha256(path)[:16]}-{model_key}-{fps:g}fps-v{EXTRACTION_VERSION}"


def cached_keypoints(
    path: str | Path,
    fps: float,
    cache_dir: str | Path,
    progress: Progress | None = None,
) -> Keypoints:
    """`extract_keypoints`, reusing an earlier extraction of the same video with the same
    models and rate stored under `cache_dir` (for tests and benchmarks; the live pipeline
    and `khfsm assess` always run pose)."""
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    cached = cache / f"{Path(path).stem}-{keypoints_cache_key(path, fps)}.npz"
    if cached.is_file():
        return Keypoints.load(cached)
    keypoints = extract_keypoints(path, fps, progress=progress)
    partial = cached.with_name(cached.stem + ".partial.npz")
    keypoints.save(partial)
    partial.replace(cached)  # atomic: a concurrent reader never sees half a file
    return keypoints


def model_hashes() -> dict[str, str]:
    """Model file -> sha256 of the pose models, from the manifest (empty if unavailable)."""
    try:
        from khfsm.vision.manifest import load_manifest
    except ImportError:
        return {}
    try:
        manifest = load_manifest()
    except Exception:  # no manifest: the session simply records no model hashes
        return {}
    return {
        entry.file: entry.sha256
        for name, entry in manifest.items()
        if name in ("pose_detection", "pose_landmark")
    }


def judge_keypoints(
    keypoints: Keypoints,
    exercise: Exercise,
    level: int,
    *,
    source: str = "",
    models: dict[str, str] | None = None,
    recorder: EventRecorder | None = None,
    session_id: str | None = None,
) -> tuple[str, SessionSummary, list[Event]]:
    """Run one whole session over extracted keypoints; returns (id, summary, events).

    The session is prepared for exactly the sampled frames, so it ends by time-up on the
    last one; a stop is requested only if the rules did not end it otherwise (for instance
    when a stream shorter than declared is judged).
    """
    session_id = session_id or uuid.uuid4().hex
    n = len(keypoints)
    session = Session(exercise, who=f"assessment of {source or 'a video'}")
    events: list[Event] = []
    events += session.prepare(
        SessionPrepared(
            task=exercise.task,
            capture_id=0,
            level=level,
            fps=keypoints.fps,
            frames=n,
            source=source,
            video_path="",
            engine_version=khfsm.__version__,
            rules_version=exercise.rules_version,
            models=dict(models or {}),
            frame_width=keypoints.frame_width,
            frame_height=keypoints.frame_height,
        )
    )
    events += session.start(SessionStarted())
    examinee = {event.frame: event for event in keypoints.examinee}
    for k in range(n):
        if session.machine.ended:
            break
        if k in examinee:
            events.append(examinee[k])
        events += session.observe(FrameObserved.of(k, keypoints.pose(k)))
    if not session.machine.ended:
        events += session.request_stop(StopRequested(frame=session.progress.frames))
    if recorder is not None:
        recorder.append(session_id, 0, events)
    return session_id, fold(events), events


def assess_video(
    path: str | Path,
    task: str,
    level: int,
    fps: float,
    recorder: EventRecorder | None,
    progress: Progress | None = None,
) -> tuple[str, SessionSummary]:
    """Assess a whole video file under `task`'s rules and store the session."""
    from khfsm.registry import get_exercise

    exercise = get_exercise(task)
    keypoints = extract_keypoints(path, fps, progress=progress)
    session_id, summary, _ = judge_keypoints(
        keypoints,
        exercise,
        level,
        source=str(path),
        models=model_hashes(),
        recorder=recorder,
    )
    return session_id, summary
