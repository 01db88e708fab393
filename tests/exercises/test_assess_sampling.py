"""Frame sampling of `khfsm.assess`: assessed frame k is the first source frame at or after
k / fps on the video's own timeline."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from khfsm.assess import (
    AssessError,
    expected_frames,
    extract_keypoints,
    probe_video,
    sampled_frames,
)


def _numbered_video(path: Path, fps: float, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    for i in range(frames):
        image = np.zeros((48, 64, 3), dtype=np.uint8)
        image[:, :] = (i * 4) % 256  # the frame number, readable after JPEG
        writer.write(image)
    writer.release()
    return path


def _number(frame: np.ndarray) -> int:
    return round(float(frame.mean()) / 4)


@pytest.mark.parametrize(
    ("source_fps", "fps"), [(30.0, 20.0), (25.0, 20.0), (20.0, 20.0), (10.0, 20.0)]
)
def test_frame_k_is_the_first_source_frame_at_or_after_k_over_fps(
    tmp_path: Path, source_fps: float, fps: float
) -> None:
    video = _numbered_video(tmp_path / "n.avi", source_fps, 40)
    taken = [(k, _number(frame)) for k, frame in sampled_frames(video, fps)]
    assert [k for k, _ in taken] == list(range(len(taken)))
    for k, i in taken:
        assert i == math.ceil(k * source_fps / fps - 1e-9)
    last = 39
    assert len(taken) == math.floor(last / source_fps * fps + 1e-9) + 1
    assert expected_frames(probe_video(video), fps) == len(taken)


def test_extraction_keeps_every_sampled_frame_and_reuses_repeated_ones(tmp_path: Path) -> None:
    video = _numbered_video(tmp_path / "n.avi", 10.0, 10)
    calls: list[int] = []

    class Nobody:
        def process(self, frame_bgr: np.ndarray) -> None:
            calls.append(_number(frame_bgr))
            return None

    progress: list[tuple[int, int]] = []
    keypoints = extract_keypoints(
        video, 20.0, tracker=Nobody(), progress=lambda d, n: progress.append((d, n))
    )
    assert len(keypoints) == 19 and not keypoints.present.any()
    assert calls == list(range(10))  # each source frame through pose once
    assert progress[-1] == (19, 19)
    assert keypoints.pose(0) is None


def test_missing_and_unreadable_videos_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(AssessError, match="not found"):
        probe_video(tmp_path / "nope.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(AssessError, match="cannot open"):
        probe_video(junk)
