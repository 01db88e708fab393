"""Regions of interest, crops and projections, ported from MediaPipe's calculators.

Coordinates follow MediaPipe: a `Roi` is a rotated rectangle in *normalised* image coordinates
(x / width, y / height) with rotation in radians, clockwise in image space. Arithmetic is in
float64 like MediaPipe's C++ (floats there, but the parity budget is sub-pixel, not bit-exact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from khfsm.vision.picture import Image, YuvPicture


@dataclass(frozen=True, slots=True)
class Roi:
    x_center: float
    y_center: float
    width: float
    height: float
    rotation: float = 0.0


@dataclass(frozen=True, slots=True)
class Letterbox:
    """Padding added to keep the aspect ratio, as fractions of the tensor side."""

    left: float = 0.0
    top: float = 0.0
    right: float = 0.0
    bottom: float = 0.0

    def remove(self, points: np.ndarray) -> np.ndarray:
        """Map normalised tensor coordinates (..., 2+) back to the un-padded ROI."""
        out = np.array(points, dtype=np.float64)
        out[..., 0] = (out[..., 0] - self.left) / (1.0 - self.left - self.right)
        out[..., 1] = (out[..., 1] - self.top) / (1.0 - self.top - self.bottom)
        return out


def normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def crop_to_tensor(
    image: Image,
    roi: Roi | None,
    size: int,
    *,
    keep_aspect_ratio: bool,
    value_range: tuple[float, float],
    border_zero: bool,
) -> tuple[np.ndarray, Letterbox]:
    """ImageToTensorCalculator (OpenCV path): warp `roi` (whole image if None) of a BGR uint8
    image into a size x size RGB float32 tensor scaled to `value_range`. A `YuvPicture` is
    warped plane by plane and converted in the crop only (see `khfsm.vision.picture`).

    The warp runs on the BGR image and channels are swapped afterwards: interpolation is
    per channel, so this is bit-identical to converting first, and cheaper.
    """
    height, width = image.shape[:2]
    if roi is None:
        cx, cy, rw, rh, rot = width / 2, height / 2, float(width), float(height), 0.0
    else:
        cx, cy = roi.x_center * width, roi.y_center * height
        rw, rh, rot = roi.width * width, roi.height * height, roi.rotation
    letterbox = Letterbox()
    if keep_aspect_ratio:
        # The output is square: pad the shorter side of the ROI (centred).
        ratio = rh / rw
        if ratio < 1.0:
            pad = (1.0 - ratio) / 2.0
            rh = rw
            letterbox = Letterbox(0.0, pad, 0.0, pad)
        else:
            pad = (1.0 - 1.0 / ratio) / 2.0
            rw = rh
            letterbox = Letterbox(pad, 0.0, pad, 0.0)
    src = cv2.boxPoints(((cx, cy), (rw, rh), math.degrees(rot))).astype(np.float32)
    dst = np.array([[0, size], [0, 0], [size, 0], [size, size]], np.float32)
    if isinstance(image, YuvPicture):
        # A rotated rectangle onto a square is affine: three corners fix it, and warpAffine
        # costs well under half of warpPerspective per plane.
        affine = cv2.getAffineTransform(src[:3], dst[:3])
        return image.to_tensor(affine, size, value_range, border_zero), letterbox
    matrix = cv2.getPerspectiveTransform(src, dst)
    crop = cv2.warpPerspective(
        image,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT if border_zero else cv2.BORDER_REPLICATE,
        borderValue=0,
    )
    lo, hi = value_range
    tensor = crop[..., ::-1].astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)
    return tensor, letterbox


def rotation_from_points(
    start: np.ndarray, end: np.ndarray, width: int, height: int, target_degrees: float
) -> float:
    """Rotation that turns the start->end vector (normalised coords) to `target_degrees`."""
    dx = (end[0] - start[0]) * width
    dy = (end[1] - start[1]) * height
    return normalize_radians(math.radians(target_degrees) - math.atan2(-dy, dx))


def alignment_points_roi(
    center: np.ndarray, scale_point: np.ndarray, width: int, height: int, target_degrees: float
) -> Roi:
    """AlignmentPointsRectsCalculator: square centred on `center`, side twice the distance to
    `scale_point` (in pixels), rotated so that center->scale_point points to the target angle."""
    size = 2.0 * math.hypot(
        (scale_point[0] - center[0]) * width, (scale_point[1] - center[1]) * height
    )
    return Roi(
        x_center=float(center[0]),
        y_center=float(center[1]),
        width=size / width,
        height=size / height,
        rotation=rotation_from_points(center, scale_point, width, height, target_degrees),
    )


def scale_roi(roi: Roi, width: int, height: int, scale: float) -> Roi:
    """RectTransformationCalculator with square_long and equal x/y scale (no shift)."""
    long_side = max(roi.width * width, roi.height * height)
    return Roi(
        x_center=roi.x_center,
        y_center=roi.y_center,
        width=long_side / width * scale,
        height=long_side / height * scale,
        rotation=roi.rotation,
    )


def project_to_image(points: np.ndarray, roi: Roi) -> np.ndarray:
    """LandmarkProjectionCalculator: (N, >=3) normalised crop coords -> normalised image coords.
    Extra columns (visibility, presence) are copied unchanged."""
    out = np.array(points, dtype=np.float64)
    x = points[:, 0] - 0.5
    y = points[:, 1] - 0.5
    cos, sin = math.cos(roi.rotation), math.sin(roi.rotation)
    out[:, 0] = (cos * x - sin * y) * roi.width + roi.x_center
    out[:, 1] = (sin * x + cos * y) * roi.height + roi.y_center
    out[:, 2] = points[:, 2] * roi.width
    return out


def roi_corners_px(roi: Roi, width: int, height: int) -> np.ndarray:
    """The four corners of a ROI in pixels (for drawing)."""
    box = (
        (roi.x_center * width, roi.y_center * height),
        (roi.width * width, roi.height * height),
        math.degrees(roi.rotation),
    )
    return cv2.boxPoints(box)
