"""The heatmap refinement: its array form is bit-identical to refining landmark by landmark,
as MediaPipe's RefineLandmarksFromHeatmapCalculator does."""

from __future__ import annotations

import numpy as np
import pytest

from khfsm.vision.heatmap import MIN_CONFIDENCE_TO_REFINE, refine_from_heatmap


def one_by_one(landmarks: np.ndarray, logits: np.ndarray, kernel_size: int = 7) -> np.ndarray:
    """The calculator as written upstream: a loop over landmarks (x, y only)."""
    height, width, _ = logits.shape
    out = landmarks.copy()
    half = (kernel_size - 1) // 2
    for i in range(landmarks.shape[0]):
        col, row = int(landmarks[i, 0] * width), int(landmarks[i, 1] * height)
        if col < 0 or col >= width or row < 0 or col >= height:  # upstream's check, as is
            continue
        r0, r1 = max(0, row - half), min(height, row + half + 1)
        c0, c1 = max(0, col - half), min(width, col + half + 1)
        if r1 <= r0 or c1 <= c0:
            continue
        confidence = 1.0 / (1.0 + np.exp(-logits[r0:r1, c0:c1, i].astype(np.float64)))
        total = confidence.sum()
        if confidence.max() < MIN_CONFIDENCE_TO_REFINE or total <= 0:
            continue
        out[i, 0] = (np.arange(c0, c1)[np.newaxis, :] * confidence).sum() / width / total
        out[i, 1] = (np.arange(r0, r1)[:, np.newaxis] * confidence).sum() / height / total
    return out


@pytest.mark.parametrize("seed", range(20))
def test_refining_all_landmarks_at_once_is_bit_identical_to_one_by_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((64, 64, 39)) * rng.uniform(0.5, 6.0)).astype(np.float32)
    # x, y from a little outside the crop to a little beyond it: whole windows, windows the
    # edge cuts, landmarks outside (left as they are)
    landmarks = np.concatenate(
        [rng.uniform(-0.2, 1.2, (39, 2)), rng.uniform(0.0, 1.0, (39, 3))], axis=1
    )
    expected = one_by_one(landmarks, logits)
    refined = refine_from_heatmap(landmarks, logits)
    assert refined.tobytes() == expected.tobytes()
    assert not np.array_equal(refined[:, :2], landmarks[:, :2])  # something was refined


def test_a_confident_peak_pulls_the_landmark_to_it_and_an_unconfident_window_leaves_it() -> None:
    logits = np.full((64, 64, 3), -40.0, np.float32)  # confidence ~4e-18: nothing
    logits[20, 30, 0] = 40.0  # landmark 0: a sharp peak 2 cells right of where it is
    logits[5:8, 0:2, 1] = 40.0  # landmark 1: a peak the top-left corner cuts
    landmarks = np.array(
        [[28.5 / 64, 20.5 / 64, 0, 1, 1], [0.5 / 64, 6.5 / 64, 0, 1, 1], [0.5, 0.5, 0, 1, 1]]
    )
    refined = refine_from_heatmap(landmarks, logits)
    assert refined[0, 0] == pytest.approx(30 / 64, abs=1e-6)
    assert refined[0, 1] == pytest.approx(20 / 64, abs=1e-6)
    assert refined[1, 0] == pytest.approx(0.5 / 64, abs=1e-6)  # mean of columns 0 and 1
    assert refined[1, 1] == pytest.approx(6 / 64, abs=1e-6)  # mean of rows 5, 6, 7
    np.testing.assert_array_equal(refined[2], landmarks[2])  # nothing confident: unchanged
    np.testing.assert_array_equal(refined[:, 2:], landmarks[:, 2:])  # z, scores untouched


def test_a_batch_of_frames_is_refined_bit_for_bit_as_each_frame_alone() -> None:
    rng = np.random.default_rng(7)
    frames = 5
    logits = (rng.standard_normal((frames, 64, 64, 39)) * 4.0).astype(np.float32)
    landmarks = np.concatenate(
        [rng.uniform(-0.2, 1.2, (frames, 39, 2)), rng.uniform(0.0, 1.0, (frames, 39, 3))], axis=2
    )
    together = refine_from_heatmap(landmarks, logits)
    assert together.shape == landmarks.shape
    for b in range(frames):
        alone = refine_from_heatmap(landmarks[b], logits[b])
        assert (
            together[b].tobytes()
            == alone.tobytes()
            == one_by_one(landmarks[b], logits[b]).tobytes()
        )
