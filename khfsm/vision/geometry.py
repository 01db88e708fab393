"""Regions of interest, crops and projections, ported from MediaPipe's calculators.

Coordinates follow MediaPipe: a `Roi` is a rotated rectangle in *normalised* image coordinates
(x / width, y / height) with rotation in radians, clockwise in image space. Arithmetic is in
float64 like MediaPipe's C++ (floats there, but the parity budget is sub-pixel, not bit-exact).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
        # Scalar sides, not remove_letterboxes' columns: called for every detection.
        out = np.array(points, dtype=np.float64)
        out[..., 0] = (out[..., 0] - self.left) / (1.0 - self.left - self.right)
        out[..., 1] = (out[..., 1] - self.top) / (1.0 - self.top - self.bottom)
        return out


def remove_letterboxes(points: np.ndarray, letterboxes: Sequence[Letterbox]) -> np.ndarray:
    """`Letterbox.remove` for a batch: points (B, ..., 2+), frame b's by letterboxes[b]. The
    same float64 operations as frame by frame (each side a column that broadcasts)."""
    out = np.array(points, dtype=np.float64)
    shape = (len(letterboxes),) + (1,) * (out.ndim - 2)
    left, top, right, bottom = (
        np.array([getattr(lb, side) for lb in letterboxes], np.float64).reshape(shape)
        for side in ("left", "top", "right", "bottom")
    )
    out[..., 0] = (out[..., 0] - left) / (1.0 - left - right)
    out[..., 1] = (out[..., 1] - top) / (1.0 - top - bottom)
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
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, Letterbox]:
    """ImageToTensorCalculator (OpenCV path): warp `roi` (whole image if None) of a BGR uint8
    image into a size x size RGB float32 tensor scaled to `value_range`. A `YuvPicture` is
    warped plane by plane and converted in the crop only (see `khfsm.vision.picture`).
    `out`: a float32 (size, size, 3) array to write the tensor into (a frame of a batch,
    which then needs no copy into the batch); the tensor returned is then a view of it.

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
        return image.to_tensor(affine, size, value_range, border_zero, out), letterbox
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
    if out is None:
        out = np.empty((size, size, 3), np.float32)
    # The same float32 operations as `astype(float32) * scale + lo`, in place.
    out[...] = crop[..., ::-1]
    out *= np.float32((hi - lo) / 255.0)
    out += np.float32(lo)
    return out, letterbox


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
    return project_batch_to_image(np.asarray(points)[np.newaxis], [roi])[0]


def project_batch_to_image(points: np.ndarray, rois: Sequence[Roi]) -> np.ndarray:
    """`project_to_image` for a batch: points (B, N, >=3), frame b's crop rois[b]. The same
    float64 operations as frame by frame (each ROI's numbers a column that broadcasts)."""
    out = np.array(points, dtype=np.float64)
    x = points[..., 0] - 0.5
    y = points[..., 1] - 0.5

    def column(values: list[float]) -> np.ndarray:
        return np.array(values, np.float64)[:, np.newaxis]

    cos = column([math.cos(roi.rotation) for roi in rois])
    sin = column([math.sin(roi.rotation) for roi in rois])
    width, height = column([roi.width for roi in rois]), column([roi.height for roi in rois])
    x_center, y_center = column([r.x_center for r in rois]), column([r.y_center for r in rois])
    out[..., 0] = (cos * x - sin * y) * width + x_center
    out[..., 1] = (sin * x + cos * y) * height + y_center
    out[..., 2] = points[..., 2] * width
    return out


def roi_corners_px(roi: Roi, width: int, height: int) -> np.ndarray:
    """The four corners of a ROI in pixels (for drawing)."""
    box = (
        (roi.x_center * width, roi.y_center * height),
        (roi.width * width, roi.height * height),
        math.degrees(roi.rotation),
    )
    return cv2.boxPoints(box)
