"""Kinematic exercise sequences in 3-D, seen by a pinhole camera from anywhere.

`kinematics.py` poses a planar stick figure in image pixels (a side view only). Here the same
figures are lifted into a body frame in metres (X along the body, toward its back; Y up; Z to
the examinee's left), given a body width (shoulders, hips, elbows, knees apart in Z), and
looked at by a `PinholeCamera` placed by azimuth (0 = side on, at the examinee's left; 90 = in
front of the head end; 180 = the other side), elevation above the floor and distance. Each
frame becomes a `Pose` as the pose model reports one:

- `landmarks`: the pinhole projection in pixels, visibility 0.95 for a landmark on the side
  facing the camera and 0.3 for one on the far side of a side view (a real side view hides
  the far limbs), presence 0.99;
- `world`: metres in the camera's axes (x right, y down, z away from the camera) with the
  origin between the hips, which is how the model reports world landmarks.

So one trajectory rendered from several cameras must give the same attempts and verdicts:
the rules see the same body, only the camera moved.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from khfsm.domain.pose import Landmark as L
from khfsm.domain.pose import Pose
from tests.exercises.kinematics import FLOOR_Y, HEIGHT, PX_PER_M, WIDTH, Clip, Figure

Vec = tuple[float, float, float]

# Half-widths (metres) of the body in Z, per landmark pair.
HALF_WIDTH = {
    "shoulder": 0.19,
    "elbow": 0.24,
    "wrist": 0.22,
    "hip": 0.14,
    "knee": 0.12,
    "ankle": 0.12,
    "ear": 0.07,
    "eye": 0.03,
    "mouth": 0.025,
}


@dataclass(frozen=True)
class PinholeCamera:
    """A camera looking at the middle of the body; `focal_px` at 1280x720."""

    azimuth_deg: float = 0.0
    elevation_deg: float = 5.0
    distance_m: float = 3.5
    focal_px: float = 900.0
    near_vis: float = 0.95
    far_vis: float = 0.3

    def basis(self, target: Vec) -> tuple[Vec, Vec, Vec, Vec]:
        """Camera position and its right, down, forward unit vectors (in the body frame)."""
        az, el = math.radians(self.azimuth_deg), math.radians(self.elevation_deg)
        direction = (-math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el))
        position = _add(target, _scale(direction, self.distance_m))
        forward = _unit(_sub(target, position))
        right = _unit(_cross(forward, (0.0, 1.0, 0.0)))
        down = _cross(forward, right)
        return position, right, down, forward


def lift(fig: Figure) -> dict[int, Vec]:
    """The 33 landmarks of a planar (side-view, pixel) figure in the 3-D body frame."""

    def at(p: tuple[float, float], z: float) -> Vec:
        return (p[0] / PX_PER_M, (FLOOR_Y - p[1]) / PX_PER_M, z)

    points: dict[int, Vec] = {}
    for left, z_sign in ((True, 1.0), (False, -1.0)):
        s = 0 if left else 1
        points[L.LEFT_SHOULDER + s] = at(fig.shoulder, z_sign * HALF_WIDTH["shoulder"])
        points[L.LEFT_ELBOW + s] = at(fig.elbow, z_sign * HALF_WIDTH["elbow"])
        points[L.LEFT_WRIST + s] = at(fig.wrist, z_sign * HALF_WIDTH["wrist"])
        hand = (
            fig.elbow[0] + 1.15 * (fig.wrist[0] - fig.elbow[0]),
            fig.elbow[1] + 1.15 * (fig.wrist[1] - fig.elbow[1]),
        )
        for finger in (L.LEFT_PINKY, L.LEFT_INDEX, L.LEFT_THUMB):
            points[finger + s] = at(hand, z_sign * HALF_WIDTH["wrist"])
        points[L.LEFT_HIP + s] = at(fig.hip, z_sign * HALF_WIDTH["hip"])
        points[L.LEFT_KNEE + s] = at(fig.knee, z_sign * HALF_WIDTH["knee"])
        points[L.LEFT_ANKLE + s] = at(fig.ankle, z_sign * HALF_WIDTH["ankle"])
        foot = (
            fig.knee[0] + 1.12 * (fig.ankle[0] - fig.knee[0]),
            fig.knee[1] + 1.12 * (fig.ankle[1] - fig.knee[1]),
        )
        points[L.LEFT_HEEL + s] = at(foot, z_sign * HALF_WIDTH["ankle"])
        points[L.LEFT_FOOT_INDEX + s] = at(foot, z_sign * HALF_WIDTH["ankle"])
        points[L.LEFT_EAR + s] = at(fig.head, z_sign * HALF_WIDTH["ear"])
        points[L.MOUTH_LEFT + s] = at(fig.head, z_sign * HALF_WIDTH["mouth"])
        for eye in (L.LEFT_EYE_INNER, L.LEFT_EYE, L.LEFT_EYE_OUTER):
            points[eye + 3 * s] = at(fig.head, z_sign * HALF_WIDTH["eye"])
    points[L.NOSE] = at(fig.head, 0.0)
    return points


def to_pose(fig: Figure, camera: PinholeCamera) -> Pose:
    points = lift(fig)
    hips = _mid(points[L.LEFT_HIP], points[L.RIGHT_HIP])
    target = _mid(hips, _mid(points[L.LEFT_SHOULDER], points[L.RIGHT_SHOULDER]))
    position, right, down, forward = camera.basis(target)
    # Which side faces the camera: the examinee's left (+Z) when the camera is on that side.
    facing_left = _unit(_sub(position, target))[2]
    left_vis = camera.near_vis if facing_left > -0.5 else camera.far_vis
    right_vis = camera.near_vis if facing_left < 0.5 else camera.far_vis
    lm = np.zeros((33, 5), dtype=np.float64)
    world = np.zeros((33, 3), dtype=np.float64)
    for index, p in points.items():
        rel = _sub(p, position)
        xc, yc, zc = _dot(rel, right), _dot(rel, down), _dot(rel, forward)
        lm[index, 0] = WIDTH / 2.0 + camera.focal_px * xc / zc
        lm[index, 1] = HEIGHT / 2.0 + camera.focal_px * yc / zc
        side = _side(index)
        lm[index, 3] = left_vis if side > 0 else right_vis if side < 0 else camera.near_vis
        lm[index, 4] = 0.99
        h = _sub(p, hips)
        world[index] = (_dot(h, right), _dot(h, down), _dot(h, forward))
    return Pose(landmarks=lm.astype(np.float32), world=world.astype(np.float32), score=0.99)


def render(figures: Iterable[Figure], camera: PinholeCamera) -> Clip:
    return Clip([to_pose(fig, camera) for fig in figures])


# The cameras every view-invariance test uses.
VIEWS: dict[str, PinholeCamera] = {
    "side": PinholeCamera(azimuth_deg=0.0, elevation_deg=5.0),
    "other side": PinholeCamera(azimuth_deg=180.0, elevation_deg=5.0),
    "front": PinholeCamera(azimuth_deg=90.0, elevation_deg=8.0),
    "45 deg": PinholeCamera(azimuth_deg=45.0, elevation_deg=10.0),
    "high": PinholeCamera(azimuth_deg=20.0, elevation_deg=45.0, distance_m=4.0),
}


def _side(index: int) -> int:
    """+1 for the examinee's left landmarks, -1 for the right, 0 for the nose."""
    if index == L.NOSE:
        return 0
    if 1 <= index <= 10:
        return 1 if index in (1, 2, 3, 7, 9) else -1
    return 1 if index % 2 == 1 else -1


def _add(a: Vec, b: Vec) -> Vec:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


def _sub(a: Vec, b: Vec) -> Vec:
    return a[0] - b[0], a[1] - b[1], a[2] - b[2]


def _scale(a: Vec, k: float) -> Vec:
    return a[0] * k, a[1] * k, a[2] * k


def _dot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a: Vec, b: Vec) -> Vec:
    return a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]


def _unit(a: Vec) -> Vec:
    n = math.sqrt(_dot(a, a))
    return a[0] / n, a[1] / n, a[2] / n


def _mid(a: Vec, b: Vec) -> Vec:
    return 0.5 * (a[0] + b[0]), 0.5 * (a[1] + b[1]), 0.5 * (a[2] + b[2])
