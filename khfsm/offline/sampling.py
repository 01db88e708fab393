"""The assessed frames of a video file: its own timeline sampled at the assessment rate.

Source frame i is at t_i = i / source_fps (the container's nominal rate, as OpenCV reports
it; per-packet timestamps are not used because OpenCV's position of edited/variable-rate
files is unreliable and the labels of the shared clips are in frame_index / fps too), and
assessed frame k is the first source frame with t_i >= k / fps (`khfsm.domain.timeline`).
The same file therefore always yields the same frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from khfsm.domain.timeline import assessed_until
from khfsm.offline.probe import AssessError, ProbedVideo, probe_video

DEFAULT_FPS = 20.0


def expected_frames(info: ProbedVideo, fps: float) -> int:
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
