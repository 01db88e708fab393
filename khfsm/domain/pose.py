"""One frame's body keypoints as the rules see them (BlazePose's 33-landmark layout).

`landmarks` are image pixels (x, y), relative depth z on the scale of x, and the sigmoided
visibility and presence of each point; `world` is metres with the origin between the hips.
Left and right are the examinee's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

NUM_LANDMARKS = 33
LANDMARK_COLUMNS = 5  # x_px, y_px, z, visibility, presence
WORLD_COLUMNS = 3


class Landmark(IntEnum):
    NOSE = 0
    LEFT_EYE_INNER = 1
    LEFT_EYE = 2
    LEFT_EYE_OUTER = 3
    RIGHT_EYE_INNER = 4
    RIGHT_EYE = 5
    RIGHT_EYE_OUTER = 6
    LEFT_EAR = 7
    RIGHT_EAR = 8
    MOUTH_LEFT = 9
    MOUTH_RIGHT = 10
    LEFT_SHOULDER = 11
    RIGHT_SHOULDER = 12
    LEFT_ELBOW = 13
    RIGHT_ELBOW = 14
    LEFT_WRIST = 15
    RIGHT_WRIST = 16
    LEFT_PINKY = 17
    RIGHT_PINKY = 18
    LEFT_INDEX = 19
    RIGHT_INDEX = 20
    LEFT_THUMB = 21
    RIGHT_THUMB = 22
    LEFT_HIP = 23
    RIGHT_HIP = 24
    LEFT_KNEE = 25
    RIGHT_KNEE = 26
    LEFT_ANKLE = 27
    RIGHT_ANKLE = 28
    LEFT_HEEL = 29
    RIGHT_HEEL = 30
    LEFT_FOOT_INDEX = 31
    RIGHT_FOOT_INDEX = 32


# Pairs drawn as the skeleton (also used by the review page).
SKELETON: tuple[tuple[int, int], ...] = (
    (11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24),
    (23, 25), (25, 27), (24, 26), (26, 28), (27, 29), (28, 30), (29, 31), (30, 32),
    (27, 31), (28, 32), (15, 17), (15, 19), (15, 21), (16, 18), (16, 20), (16, 22),
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
)  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class Pose:
    """Keypoints of the examinee in one frame; arrays are read-only float32."""

    landmarks: np.ndarray  # (33, 5)
    world: np.ndarray  # (33, 3)
    score: float

    def __post_init__(self) -> None:
        if self.landmarks.shape != (NUM_LANDMARKS, LANDMARK_COLUMNS):
            raise ValueError(f"landmarks must be (33, 5), got {self.landmarks.shape}")
        if self.world.shape != (NUM_LANDMARKS, WORLD_COLUMNS):
            raise ValueError(f"world landmarks must be (33, 3), got {self.world.shape}")

    def xy(self, landmark: int) -> np.ndarray:
        return self.landmarks[landmark, :2]

    def visibility(self, landmark: int) -> float:
        return float(self.landmarks[landmark, 3])
