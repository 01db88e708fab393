"""Skeleton overlay: what the pose model sees, for `khfsm pose --draw`."""

from __future__ import annotations

import cv2
import numpy as np

from khfsm.vision.geometry import Roi, roi_corners_px
from khfsm.vision.pose import PoseEstimate

# MediaPipe's POSE_CONNECTIONS (face, arms and hands, torso, legs and feet).
POSE_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)  # fmt: skip

VISIBLE = 0.5
_LINE = (255, 255, 255)
_SEEN = (0, 220, 0)
_UNSEEN = (0, 0, 255)
_ROI = (255, 200, 0)


def draw_pose(
    image_bgr: np.ndarray, estimate: PoseEstimate | None, roi: Roi | None = None
) -> np.ndarray:
    """A copy of the image with the skeleton (green: visibility >= 0.5, red: below) and, if
    given, the crop ROI the landmark model used."""
    out = image_bgr.copy()
    height, width = out.shape[:2]
    thickness = max(1, round(max(width, height) / 400))
    if roi is not None:
        corners = np.round(roi_corners_px(roi, width, height)).astype(np.int32)
        cv2.polylines(out, [corners], True, _ROI, thickness, cv2.LINE_AA)
    if estimate is None:
        cv2.putText(out, "no person", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, _UNSEEN, 2)
        return out
    points = np.round(estimate.landmarks[:, :2]).astype(np.int32)
    for a, b in POSE_CONNECTIONS:
        cv2.line(out, tuple(points[a]), tuple(points[b]), _LINE, thickness, cv2.LINE_AA)
    for point, visibility in zip(points, estimate.landmarks[:, 3], strict=True):
        colour = _SEEN if visibility >= VISIBLE else _UNSEEN
        cv2.circle(out, tuple(point), thickness + 2, colour, -1, cv2.LINE_AA)
    return out
