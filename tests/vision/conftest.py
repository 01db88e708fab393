"""Paths to the shared test material (beside the repository, never copied into it)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.conftest import REPO_ROOT, unavailable

SHARED_DIR = REPO_ROOT.parent / "shared"


def parity_dir() -> Path:
    """$KHFSM_TEST_PARITY, else ../shared/models/parity (photos + mediapipe_reference.json)."""
    directory = Path(os.environ.get("KHFSM_TEST_PARITY", SHARED_DIR / "models" / "parity"))
    if not (directory / "mediapipe_reference.json").is_file():
        unavailable(
            f"MediaPipe parity photos not found at {directory}: set KHFSM_TEST_PARITY to the "
            f"folder holding mediapipe_reference.json and images/"
        )
    return directory


@pytest.fixture(scope="session")
def parity_reference() -> dict[str, Any]:
    return json.loads((parity_dir() / "mediapipe_reference.json").read_text())


@pytest.fixture(scope="session")
def parity_image() -> Callable[[str], np.ndarray]:
    """Reader of a parity photo as BGR uint8, e.g. parity_image("astronaut.png")."""

    def read(name: str) -> np.ndarray:
        path = parity_dir() / "images" / name
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        assert image is not None, f"cannot read {path}"
        return image

    return read


@pytest.fixture(scope="session")
def parity_path() -> Callable[[str], Path]:
    """Path of a parity photo, e.g. parity_path("astronaut.png")."""
    return lambda name: parity_dir() / "images" / name


@pytest.fixture(scope="session")
def clips_dir(videos: Path) -> Path:
    return videos
