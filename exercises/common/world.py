"""View-invariant body geometry from the 3-D world landmarks, and the camera view.

The pose model gives, besides image pixels, every landmark in metres ("world": origin
between the hips, axes those of the camera: x to the image's right, y down the image, z away
from the camera). Angles between limbs measured there do not depend on where the camera
stands, which the image-plane angles of `geometry.py` do (a front camera foreshortens a
push-up's arms; a tilted one turns "horizontal").

The one fallback rule (documented here, used everywhere): **a joint angle is measured in 3-D;
the image-plane angle is used only when the world estimate of that joint is degenerate**
(a non-finite coordinate, or a limb segment shorter than `MIN_SEGMENT_M`, which is what a
pose source without a world estimate, or a collapsed estimate, produces). Which side of the
body is measured is decided by the image visibility (`Skeleton.pair_angle`): the side the
camera sees; the mean of both when both are seen. A landmark hidden from the camera has a
world position too, but it is the model's guess from the rest of the body.

Orientation uses the camera's "down" (world +y) as gravity: lane cameras are mounted upright
and the thresholds that use it sit half-way between the postures they separate (45 deg), so a
camera rolled by up to ~20 deg (a tilted phone) does not change a decision. A camera pitched
down tilts every axis the same way about the camera's x axis: a plank seen from behind the
feet by a camera looking down 25 deg or more reads as less than 45 deg from vertical (from
the head end or the side it reads more horizontal, which is safe). Such a camera is outside
what these rules handle; `tests/exercises/kinematics3d.py` renders the supported ones.

The camera view is where the camera stands relative to the body: the body's left-right axis
(shoulders and hips, in 3-D) pointing along the camera's line of sight is a side view, across
it a front (or back) view, in between oblique. `ViewVote` accumulates it over a session, so
one verdict does not depend on a frame's noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

from khfsm.domain.pose import Landmark as L
from khfsm.domain.pose import Pose

from .geometry import HIP_L, HIP_R, KNEE_L, KNEE_R, Body, Triple, read_body

# A limb segment shorter than this in the world estimate is degenerate (real segments of
# the joints measured here, upper arm, forearm, thigh, shank, torso, are >= 20 cm in adults
# and >= 12 cm in children).
MIN_SEGMENT_M = 0.05
# Visibility from which a landmark counts as seen by the camera (the model's own 50 % point).
SEEN = 0.5
# Below this on both sides a joint is not measured at all.
FLOOR = 0.3

Vec = tuple[float, float, float]


class View(IntEnum):
    """Camera view, stored in verdict measurements as `camera_view` (its value)."""

    UNKNOWN = 0
    SIDE = 1
    FRONT_BACK = 2
    OBLIQUE = 3


# The body's left-right axis at most this far from the image plane: front/back view; at
# least 90 - this: side view; otherwise oblique (the three equal thirds of 0-90 deg).
VIEW_THIRD_DEG = 30.0


@dataclass(frozen=True, slots=True)
class Skeleton:
    """One frame: the image `Body` (pixels, visibility) plus the world landmarks."""

    image: Body
    wx: tuple[float, ...]
    wy: tuple[float, ...]
    wz: tuple[float, ...]

    def point(self, i: int) -> Vec:
        return self.wx[i], self.wy[i], self.wz[i]

    def mid(self, a: int, b: int) -> Vec:
        return (
            0.5 * (self.wx[a] + self.wx[b]),
            0.5 * (self.wy[a] + self.wy[b]),
            0.5 * (self.wz[a] + self.wz[b]),
        )

    def seen(self, *points: int) -> bool:
        return self.image.seen(*points, min_vis=SEEN)

    def angle(self, joints: Triple) -> float:
        """Angle at the middle joint, degrees (180 = straight): 3-D, or the image angle when
        the world estimate of this joint is degenerate (the module's one fallback rule)."""
        a, b, c = joints
        pa, pb, pc = self.point(a), self.point(b), self.point(c)
        u = (pa[0] - pb[0], pa[1] - pb[1], pa[2] - pb[2])
        v = (pc[0] - pb[0], pc[1] - pb[1], pc[2] - pb[2])
        nu = _norm(u)
        nv = _norm(v)
        if not (nu >= MIN_SEGMENT_M and nv >= MIN_SEGMENT_M):  # also catches NaN
            return self.image.angle(joints)
        cos = (u[0] * v[0] + u[1] * v[1] + u[2] * v[2]) / (nu * nv)
        return math.degrees(math.acos(max(-1.0, min(1.0, cos))))

    def pair_angle(self, left: Triple, right: Triple) -> float | None:
        """The joint angle of the side the camera sees; the mean when it sees both; None when
        neither side reaches the `FLOOR` visibility."""
        vl = self.image.min_vis(left)
        vr = self.image.min_vis(right)
        if vl >= SEEN and vr >= SEEN:
            return 0.5 * (self.angle(left) + self.angle(right))
        if vl >= vr:
            return self.angle(left) if vl >= FLOOR else None
        return self.angle(right) if vr >= FLOOR else None

    def from_vertical(self, upper: Vec, lower: Vec) -> float:
        """Angle of the lower->upper axis from "up" (world -y), degrees: 0 upright, 90 level."""
        dx, dy, dz = upper[0] - lower[0], lower[1] - upper[1], upper[2] - lower[2]
        n = _norm((dx, dy, dz))
        if not n > 1e-6:
            return 0.0
        return math.degrees(math.acos(max(-1.0, min(1.0, dy / n))))

    def torso_from_vertical(self) -> float:
        """Hips->shoulders axis from vertical (0 sitting or standing up, 90 lying)."""
        return self.from_vertical(
            self.mid(L.LEFT_SHOULDER, L.RIGHT_SHOULDER), self.mid(L.LEFT_HIP, L.RIGHT_HIP)
        )

    def body_from_vertical(self) -> float:
        """Ankles->shoulders axis from vertical: the whole body (a plank reads ~70-90)."""
        return self.from_vertical(
            self.mid(L.LEFT_SHOULDER, L.RIGHT_SHOULDER), self.mid(L.LEFT_ANKLE, L.RIGHT_ANKLE)
        )

    def lateral_axis_from_image_plane(self) -> float:
        """How far the body's left-right axis (shoulders + hips) points along the camera's
        line of sight, degrees: 0 facing the camera (or back to it), 90 side on."""
        sx = self.wx[L.LEFT_SHOULDER] - self.wx[L.RIGHT_SHOULDER]
        sz = self.wz[L.LEFT_SHOULDER] - self.wz[L.RIGHT_SHOULDER]
        hx = self.wx[L.LEFT_HIP] - self.wx[L.RIGHT_HIP]
        hz = self.wz[L.LEFT_HIP] - self.wz[L.RIGHT_HIP]
        x, z = abs(sx) + abs(hx), abs(sz) + abs(hz)
        if not x + z > 1e-6:
            return -1.0
        return math.degrees(math.atan2(z, x))

    def view(self) -> View:
        return view_of(self.lateral_axis_from_image_plane())


def view_of(lateral_deg: float) -> View:
    if lateral_deg < 0 or not math.isfinite(lateral_deg):
        return View.UNKNOWN
    if lateral_deg <= VIEW_THIRD_DEG:
        return View.FRONT_BACK
    if lateral_deg >= 90.0 - VIEW_THIRD_DEG:
        return View.SIDE
    return View.OBLIQUE


def read_skeleton(pose: Pose | None, width: int = 0, height: int = 0) -> Skeleton | None:
    """Plain-float view of a pose with its world landmarks (None when nobody was found)."""
    image = read_body(pose, width, height)
    if pose is None or image is None:
        return None
    wx, wy, wz = pose.world.T.tolist()
    return Skeleton(image=image, wx=tuple(wx), wy=tuple(wy), wz=tuple(wz))


@dataclass(frozen=True, slots=True)
class ViewVote:
    """The session's camera view: the most frequent per-frame view so far (frames where the
    examinee is in the exercise's position); ties go to the earlier-listed view."""

    side: int = 0
    front_back: int = 0
    oblique: int = 0

    def add(self, view: View) -> ViewVote:
        if view is View.SIDE:
            return ViewVote(self.side + 1, self.front_back, self.oblique)
        if view is View.FRONT_BACK:
            return ViewVote(self.side, self.front_back + 1, self.oblique)
        if view is View.OBLIQUE:
            return ViewVote(self.side, self.front_back, self.oblique + 1)
        return self

    @property
    def view(self) -> View:
        best = max(self.side, self.front_back, self.oblique)
        if best == 0:
            return View.UNKNOWN
        if self.side == best:
            return View.SIDE
        if self.front_back == best:
            return View.FRONT_BACK
        return View.OBLIQUE


def _norm(v: Vec) -> float:
    return math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])


# Standing: torso within this of vertical (half-way to the 45 deg that separates upright
# from lying, so a forward lean while walking still reads upright) ...
UPRIGHT_MAX_DEG = 30.0
# ... with knees and hips extended: a knee or hip bent less than 30 deg from straight is a
# standing leg (walking peaks at ~20 deg of knee flexion in stance); squatting or kneeling
# bends them far more.
STRAIGHT_LEG_DEG = 150.0


def is_standing(skel: Skeleton) -> bool | None:
    """Upright with knees and hips extended (3-D); None when the legs are not seen."""
    knee = skel.pair_angle(KNEE_L, KNEE_R)
    hip = skel.pair_angle(HIP_L, HIP_R)
    if knee is None or hip is None:
        return None
    return (
        skel.torso_from_vertical() <= UPRIGHT_MAX_DEG
        and knee >= STRAIGHT_LEG_DEG
        and hip >= STRAIGHT_LEG_DEG
    )
