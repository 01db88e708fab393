"""The pose of every assessed frame of a video: extracted by a pose tracker, kept as arrays.

`Keypoints.save`/`load` is the file format of the keypoint cache (`khfsm.offline.cache`):
a compressed NumPy archive with `fps`, `size`, `landmarks`, `world`, `scores`, `present`,
and the examinee changes as event types and payloads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from khfsm.domain.codec import EventRecord, decode, encode
from khfsm.domain.events import ExamineeChanged, ExamineeLost
from khfsm.domain.pose import LANDMARK_COLUMNS, NUM_LANDMARKS, WORLD_COLUMNS, Pose
from khfsm.offline.probe import AssessError, probe_video
from khfsm.offline.sampling import DEFAULT_FPS, expected_frames, sampled_frames

# Bumped when the sampling or the conversion to Pose changes, so cached keypoints expire.
# 2: the examinee is chosen among the detector's candidates (khfsm.vision.examinee), and the
# changes of who is followed are kept with the keypoints. 3: while settling, the detector looks
# at every `SETTLING_STRIDE`-th frame, not every frame.
EXTRACTION_VERSION = "3"

ReportProgress = Callable[[int, int], None]  # (frames done, frames expected)


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
        if not isinstance(event, ExamineeChanged | ExamineeLost):
            raise AssessError(f"keypoint file has an unexpected {type(event).__name__} event")
        events.append(event)
    return tuple(events)


def extract_keypoints(
    path: str | Path,
    fps: float = DEFAULT_FPS,
    tracker: PoseSource | None = None,
    progress: ReportProgress | None = None,
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
