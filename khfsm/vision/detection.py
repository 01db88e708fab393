"""Decoding of MediaPipe SSD detector outputs and weighted non-maximum suppression.

Ports TensorsToDetectionsCalculator (reverse_output_order, fixed anchors, no exp on sizes),
NonMaxSuppressionCalculator (WEIGHTED, IoU) and DetectionLetterboxRemovalCalculator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from khfsm.vision.geometry import Letterbox

SCORE_CLIP = 100.0


@dataclass(frozen=True, slots=True)
class Detection:
    score: float
    box: np.ndarray  # (4,) xmin, ymin, width, height, normalised image coordinates
    keypoints: np.ndarray  # (K, 2) normalised image coordinates


def decode_detections(
    raw_boxes: np.ndarray,
    raw_scores: np.ndarray,
    anchors: np.ndarray,
    input_size: int,
    min_score: float,
    iou_threshold: float = 0.3,
) -> list[Detection]:
    """Detections of one image, best first, in normalised *tensor* coordinates.

    raw_boxes: (A, 4 + 2K) per anchor; raw_scores: (A,) or (A, 1) logits; anchors: (A, 2).
    """
    logits = np.clip(raw_scores.reshape(-1).astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.nonzero(scores >= min_score)[0]
    if keep.size == 0:
        return []
    raw = raw_boxes[keep].astype(np.float64) / input_size
    centers = anchors[keep].astype(np.float64)
    cx = raw[:, 0] + centers[:, 0]
    cy = raw[:, 1] + centers[:, 1]
    w, h = raw[:, 2], raw[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    keypoints = raw[:, 4:].reshape(len(keep), -1, 2) + centers[:, None, :]
    return _weighted_nms(scores[keep], boxes, keypoints, iou_threshold)


def _weighted_nms(
    scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, iou_threshold: float
) -> list[Detection]:
    # Stable sort so that equal scores keep anchor order, as std::stable_sort does upstream.
    remaining = np.argsort(-scores, kind="stable")
    out: list[Detection] = []
    while remaining.size:
        top = remaining[0]
        overlap = _iou(boxes[top], boxes[remaining]) > iou_threshold
        overlap[0] = True  # a degenerate (zero-area) top box must still leave the queue
        cluster = remaining[overlap]
        weights = scores[cluster][:, None]
        total = weights.sum()
        box = (boxes[cluster] * weights).sum(axis=0) / total
        kps = (keypoints[cluster] * weights[:, :, None]).sum(axis=0) / total
        out.append(
            Detection(
                score=float(scores[top]),
                box=np.array([box[0], box[1], box[2] - box[0], box[3] - box[1]]),
                keypoints=kps,
            )
        )
        remaining = remaining[~overlap]
    return out


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    iw = np.maximum(0.0, np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]))
    ih = np.maximum(0.0, np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]))
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def remove_letterbox(detection: Detection, letterbox: Letterbox) -> Detection:
    """Map a detection from letterboxed tensor coordinates to image coordinates."""
    x0, y0, w, h = detection.box
    corners = letterbox.remove(np.array([[x0, y0], [x0 + w, y0 + h]]))
    return Detection(
        score=detection.score,
        box=np.array(
            [
                corners[0, 0],
                corners[0, 1],
                corners[1, 0] - corners[0, 0],
                corners[1, 1] - corners[0, 1],
            ]
        ),
        keypoints=letterbox.remove(detection.keypoints),
    )
