"""Face detection / mesh parity, enrolment and verification on the shared parity photos."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest

from khfsm.vision.face import (
    DEFAULT_THRESHOLD,
    FaceError,
    FaceNotFound,
    TooManyFaces,
    load_face_analyzer,
)

Reader = Callable[[str], np.ndarray]


@pytest.mark.parametrize("photo", ["astronaut.png", "grace_hopper.jpg", "camera_rgb.png"])
def test_detection_and_mesh_match_mediapipe(
    photo: str, parity_reference: dict[str, Any], parity_image: Reader
) -> None:
    reference = parity_reference[f"images/{photo}"]
    image = parity_image(photo)
    height, width = image.shape[:2]
    face = load_face_analyzer().the_face(image)
    expected_box = np.array(reference["face_det"][0]["box"])
    np.testing.assert_allclose(face.detection.box, expected_box, atol=1e-3 / max(width, height))
    mesh = np.array(reference["face_mesh"])
    error_px = np.hypot(face.mesh[:, 0] - mesh[:, 0] * width, face.mesh[:, 1] - mesh[:, 1] * height)
    assert error_px.max() < 0.1


def test_embedding_is_unit_length(parity_image: Reader) -> None:
    embedding = load_face_analyzer().embed(parity_image("astronaut.png"))
    assert embedding.shape == (192,) and embedding.dtype == np.float32
    assert abs(float(np.linalg.norm(embedding)) - 1.0) < 1e-5


@pytest.mark.parametrize("photo", ["astronaut.png", "grace_hopper.jpg", "camera_rgb.png"])
def test_same_person_from_flipped_and_rescaled_copy_is_accepted(
    photo: str, parity_image: Reader
) -> None:
    analyzer = load_face_analyzer()
    image = parity_image(photo)
    enrolled = analyzer.embed(image)
    flipped_small = cv2.resize(
        cv2.flip(image, 1), None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA
    )
    match = analyzer.verify(flipped_small, enrolled)
    assert match.accepted, match
    assert match.threshold == DEFAULT_THRESHOLD


@pytest.mark.parametrize(
    ("enrolled_photo", "probe_photo"),
    [
        ("astronaut.png", "grace_hopper.jpg"),
        ("grace_hopper.jpg", "camera_rgb.png"),
        ("camera_rgb.png", "astronaut.png"),
    ],
)
def test_different_person_is_rejected(
    enrolled_photo: str, probe_photo: str, parity_image: Reader
) -> None:
    analyzer = load_face_analyzer()
    match = analyzer.verify(parity_image(probe_photo), analyzer.embed(parity_image(enrolled_photo)))
    assert not match.accepted, match
    assert match.similarity < DEFAULT_THRESHOLD - 0.2


def test_photo_without_face_is_rejected(parity_image: Reader) -> None:
    with pytest.raises(FaceNotFound, match="no face"):
        load_face_analyzer().embed(parity_image("coffee.png"))


@pytest.mark.parametrize(("photo", "count"), [("sample4.jpg", 2), ("sample6.jpg", 4)])
def test_photo_with_several_faces_is_rejected(photo: str, count: int, parity_image: Reader) -> None:
    with pytest.raises(TooManyFaces, match=f"{count} faces"):
        load_face_analyzer().embed(parity_image(photo))


def test_crop_is_the_face_region(parity_image: Reader) -> None:
    image = parity_image("astronaut.png")
    crop = load_face_analyzer().crop(image)
    assert crop.ndim == 3 and 80 <= crop.shape[0] <= 200 and 80 <= crop.shape[1] <= 200


def test_bad_enrolled_vector_is_rejected(parity_image: Reader) -> None:
    with pytest.raises(FaceError, match="192"):
        load_face_analyzer().verify(parity_image("astronaut.png"), np.ones(128, np.float32))


def test_verify_frames_uses_best_single_face_frame(parity_image: Reader) -> None:
    analyzer = load_face_analyzer()
    enrolled = analyzer.embed(parity_image("grace_hopper.jpg"))
    frames = [
        parity_image("coffee.png"),
        parity_image("sample4.jpg"),
        parity_image("grace_hopper.jpg"),
    ]
    assert analyzer.verify_frames(frames, enrolled).accepted
    with pytest.raises(FaceNotFound):
        analyzer.verify_frames(frames[:2], enrolled)
