"""RefineLandmarksFromHeatmapCalculator (x, y only, as configured for BlazePose GHUM full)."""

from __future__ import annotations

import numpy as np

KERNEL_SIZE = 7  # graph as authored; mediapipe's Python solution silently falls back to 9
MIN_CONFIDENCE_TO_REFINE = 0.5


def refine_from_heatmap(
    landmarks: np.ndarray,
    heatmap_logits: np.ndarray,
    kernel_size: int = KERNEL_SIZE,
    min_confidence: float = MIN_CONFIDENCE_TO_REFINE,
) -> np.ndarray:
    """Replace x, y of each landmark (normalised crop coordinates, columns 0 and 1) by the
    confidence-weighted mean of the heatmap window around it, where the window is confident.

    landmarks: (N, C), or (B, N, C) for a batch of frames; heatmap_logits: (H, W, N) with one
    channel per landmark, or (B, H, W, N).

    The landmarks whose window lies wholly inside the heatmap (nearly all of them), of every
    frame of a batch, are refined together, one array operation per step rather than a Python
    loop over landmarks and frames; the few at the edge, whose windows are cut, one by one.
    Both do the same float operations in the same order on each window (a row of an (N, k*k)
    array is summed like a contiguous k*k array), so the result is bit-identical to refining
    each landmark of each frame alone.
    """
    if landmarks.ndim == 2:
        return refine_from_heatmap(
            landmarks[np.newaxis], heatmap_logits[np.newaxis], kernel_size, min_confidence
        )[0]
    _, hm_height, hm_width, _ = heatmap_logits.shape
    out = landmarks.copy()
    half = (kernel_size - 1) // 2
    # astype truncates toward zero like the C++ float->int conversion (and like int()).
    cols = (landmarks[..., 0] * hm_width).astype(np.int64)  # (B, N)
    rows = (landmarks[..., 1] * hm_height).astype(np.int64)
    # Upstream checks `center_col >= hm_height` where center_row was meant; kept for parity:
    # rows just below the crop still get a partial window.
    inside = (cols >= 0) & (cols < hm_width) & (rows >= 0) & (cols < hm_height)
    whole = (
        inside
        & (rows - half >= 0)
        & (rows + half < hm_height)
        & (cols - half >= 0)
        & (cols + half < hm_width)
    )
    frame, landmark = np.nonzero(whole)
    _refine_whole_windows(out, heatmap_logits, (frame, landmark), rows, cols, half, min_confidence)
    for b, i in zip(*np.nonzero(inside & ~whole), strict=True):
        _refine_one(
            out[b],
            heatmap_logits[b],
            int(i),
            int(rows[b, i]),
            int(cols[b, i]),
            half,
            min_confidence,
        )
    return out


def _refine_whole_windows(
    out: np.ndarray,
    heatmap_logits: np.ndarray,
    index: tuple[np.ndarray, np.ndarray],
    rows: np.ndarray,
    cols: np.ndarray,
    half: int,
    min_confidence: float,
) -> None:
    """Landmarks (frame, landmark) = `index` of a batch, whose windows lie inside."""
    frame, landmark = index
    count = frame.size
    if count == 0:
        return
    _, hm_height, hm_width, _ = heatmap_logits.shape
    side = 2 * half + 1
    offsets = np.arange(-half, half + 1)
    window_rows = (rows[index][:, np.newaxis] + offsets)[:, :, np.newaxis]  # (N, k, 1)
    window_cols = (cols[index][:, np.newaxis] + offsets)[:, np.newaxis, :]  # (N, 1, k)
    frames = frame[:, np.newaxis, np.newaxis]
    channels = landmark[:, np.newaxis, np.newaxis]
    logits = heatmap_logits[frames, window_rows, window_cols, channels].astype(np.float64)
    confidence = 1.0 / (1.0 + np.exp(-logits))  # (N, k, k)
    flat = confidence.reshape(count, side * side)
    total = flat.sum(axis=1)
    confident = (flat.max(axis=1) >= min_confidence) & (total > 0)
    x = (window_cols * confidence).reshape(count, side * side).sum(axis=1)
    y = (window_rows * confidence).reshape(count, side * side).sum(axis=1)
    chosen = (frame[confident], landmark[confident])
    out[(*chosen, 0)] = x[confident] / hm_width / total[confident]
    out[(*chosen, 1)] = y[confident] / hm_height / total[confident]


def _refine_one(
    out: np.ndarray,
    heatmap_logits: np.ndarray,
    i: int,
    row: int,
    col: int,
    half: int,
    min_confidence: float,
) -> None:
    """One landmark whose window the heatmap's edge cuts."""
    hm_height, hm_width, _ = heatmap_logits.shape
    r0, r1 = max(0, row - half), min(hm_height, row + half + 1)
    c0, c1 = max(0, col - half), min(hm_width, col + half + 1)
    if r1 <= r0 or c1 <= c0:
        return
    confidence = 1.0 / (1.0 + np.exp(-heatmap_logits[r0:r1, c0:c1, i].astype(np.float64)))
    total = confidence.sum()
    if confidence.max() < min_confidence or total <= 0:
        return
    # Broadcast index vectors rather than build index grids (np.mgrid): the same products in
    # the same order as the whole windows' (and as upstream's), so bit-identical.
    window_cols = np.arange(c0, c1)[np.newaxis, :]
    window_rows = np.arange(r0, r1)[:, np.newaxis]
    out[i, 0] = (window_cols * confidence).sum() / hm_width / total
    out[i, 1] = (window_rows * confidence).sum() / hm_height / total
