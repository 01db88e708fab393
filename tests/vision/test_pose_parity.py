"""Parity with real MediaPipe 0.10.21 (graph as authored) on the six shared photos."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from khfsm.vision.pose import PoseTracker, load_pose_models

PHOTOS = [
    "astronaut.png",
    "grace_hopper.jpg",
    "camera_rgb.png",
    "coffee.png",
    "sample4.jpg",
    "sample6.jpg",
]


@pytest.mark.parametrize("photo", PHOTOS)
def test_pose_matches_mediapipe(
    photo: str, parity_reference: dict[str, Any], parity_image: Callable[[str], np.ndarray]
) -> None:
    reference = parity_reference[f"images/{photo}"]
    image = parity_image(photo)
    height, width = image.shape[:2]

    # MediaPipe follows its best-ranked detection; the examinee rule may pick another person
    # in a group photo (sample4.jpg), so the models' parity is checked with MediaPipe's choice.
    estimate = PoseTracker(load_pose_models(), examinee_rule=False).process(image)

    if "pose" not in reference:
        assert estimate is None, "MediaPipe finds no person in this photo"
        return
    assert estimate is not None
    expected = np.array(reference["pose"], dtype=np.float64)
    dx = estimate.landmarks[:, 0] - expected[:, 0] * width
    dy = estimate.landmarks[:, 1] - expected[:, 1] * height
    error_px = np.hypot(dx, dy)
    assert error_px.max() <= 1.0, f"worst landmark {error_px.argmax()} is {error_px.max():.3f} px"
    assert np.median(error_px) <= 0.2
    np.testing.assert_allclose(estimate.landmarks[:, 3], expected[:, 3], atol=5e-3)  # visibility
    np.testing.assert_allclose(estimate.landmarks[:, 2] / width, expected[:, 2], atol=5e-3)  # z
    np.testing.assert_allclose(estimate.world, reference["pose_world"], atol=2e-3)  # metres
    assert 0.5 <= estimate.score <= 1.0


def test_estimate_layout(parity_image: Callable[[str], np.ndarray]) -> None:
    estimate = PoseTracker(load_pose_models()).process(parity_image("astronaut.png"))
    assert estimate is not None
    assert estimate.landmarks.shape == (33, 5) and estimate.landmarks.dtype == np.float32
    assert estimate.world.shape == (33, 3) and estimate.world.dtype == np.float32
    assert ((estimate.landmarks[:, 3:] >= 0) & (estimate.landmarks[:, 3:] <= 1)).all()


def test_same_frame_twice_is_bit_identical(parity_image: Callable[[str], np.ndarray]) -> None:
    models = load_pose_models()
    image = parity_image("sample6.jpg")
    first = PoseTracker(models).process(image)
    second = PoseTracker(models).process(image)
    assert first is not None and second is not None
    assert first.landmarks.tobytes() == second.landmarks.tobytes()
    assert first.world.tobytes() == second.world.tobytes()
    assert first.score == second.score


def test_rejects_non_bgr_input() -> None:
    with pytest.raises(ValueError, match="BGR uint8"):
        PoseTracker(load_pose_models()).process(np.zeros((10, 10), np.uint8))
