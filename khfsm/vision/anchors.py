"""SSD anchors, a port of MediaPipe's SsdAnchorsCalculator for the fixed-anchor-size case.

All detectors used here have `fixed_anchor_size: true`, so only the anchor centres matter;
anchor width and height are 1 and the count per cell depends on the scales generated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class AnchorSpec:
    input_size: int
    strides: tuple[int, ...]
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    offset: float = 0.5
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0


# Values from graphs/PoseDetectionCpu.pbtxt, FaceDetectionShortRange.pbtxt and
# FaceDetectionFullRange.pbtxt in mediapipe 0.10.21.
POSE_DETECTOR_ANCHORS = AnchorSpec(input_size=224, strides=(8, 16, 32, 32, 32))
FACE_SHORT_RANGE_ANCHORS = AnchorSpec(input_size=128, strides=(8, 16, 16, 16))
FACE_FULL_RANGE_ANCHORS = AnchorSpec(
    input_size=192, strides=(4,), interpolated_scale_aspect_ratio=0.0
)


def ssd_anchor_centers(spec: AnchorSpec) -> np.ndarray:
    """(N, 2) anchor centres (x, y) in normalised tensor coordinates, in MediaPipe's order:
    layer by layer, then row, column, anchor."""
    n_layers = len(spec.strides)
    centers: list[np.ndarray] = []
    layer = 0
    while layer < n_layers:
        # Consecutive layers with the same stride share one feature map.
        per_cell = 0
        last = layer
        while last < n_layers and spec.strides[last] == spec.strides[layer]:
            per_cell += len(spec.aspect_ratios)
            if spec.interpolated_scale_aspect_ratio > 0:
                per_cell += 1
            last += 1
        stride = spec.strides[layer]
        side = math.ceil(spec.input_size / stride)
        coords = (np.arange(side, dtype=np.float64) + spec.offset) / side
        ys, xs = np.meshgrid(coords, coords, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centers.append(np.repeat(grid, per_cell, axis=0))
        layer = last
    return np.concatenate(centers).astype(np.float32)
