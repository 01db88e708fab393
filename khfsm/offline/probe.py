"""What a video file declares about itself, read with OpenCV, or why it cannot be assessed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from khfsm.errors import KhfsmError


class AssessError(KhfsmError):
    """The video cannot be assessed (missing, unreadable, no frames); says why in words."""


@dataclass(frozen=True, slots=True)
class ProbedVideo:
    """A video file's timeline as its container declares it."""

    path: Path
    source_fps: float  # the container's nominal rate
    source_frames: int  # as the container declares it; may be approximate
    width: int
    height: int


def probe_video(path: str | Path) -> ProbedVideo:
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
        return ProbedVideo(
            path=path,
            source_fps=fps,
            source_frames=int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
    finally:
        capture.release()
