"""Body geometry that survives camera placement: joint angles and body-relative distances.

Joint angles do not depend on where the camera is, how far away it stands or how large the
image is; distances are divided by a body length (torso, upper arm) for the same reason.
A landmark counts only when the model says it is visible *and* it lies inside the image:
BlazePose also "predicts" limbs that are out of frame (a talking head gets legs below the
picture), and those guesses must never decide a verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from khfsm.domain.pose import Landmark as L
from khfsm.domain.pose import Pose

# A landmark this far outside the image (fraction of its size) is not seen, only guessed.
OFF_FRAME_MARGIN = 0.02

Triple = tuple[int, int, int]

ELBOW_L: Triple = (L.LEFT_SHOULDER, L.LEFT_ELBOW, L.LEFT_WRIST)
ELBOW_R: Triple = (L.RIGHT_SHOULDER, L.RIGHT_ELBOW, L.RIGHT_WRIST)
KNEE_L: Triple = (L.LEFT_HIP, L.LEFT_KNEE, L.LEFT_ANKLE)
KNEE_R: Triple = (L.RIGHT_HIP, L.RIGHT_KNEE, L.RIGHT_ANKLE)
HIP_L: Triple = (L.LEFT_SHOULDER, L.LEFT_HIP, L.LEFT_KNEE)
HIP_R: Triple = (L.RIGHT_SHOULDER, L.RIGHT_HIP, L.RIGHT_KNEE)
LINE_L: Triple = (L.LEFT_SHOULDER, L.LEFT_HIP, L.LEFT_ANKLE)
LINE_R: Triple = (L.RIGHT_SHOULDER, L.RIGHT_HIP, L.RIGHT_ANKLE)


def rnd(value: float, digits: int = 1) -> float:
    """A measurement as stored: finite and rounded (the codec refuses NaN and infinities)."""
    if not math.isfinite(value):
        return -1.0
    return round(float(value), digits)


@dataclass(frozen=True, slots=True)
class Body:
    """One frame's landmarks as plain floats, with visibility zeroed off the image."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    vis: tuple[float, ...]

    def seen(self, *points: int, min_vis: float = 0.5) -> bool:
        vis = self.vis
        return all(vis[p] >= min_vis for p in points)

    def min_vis(self, points: tuple[int, ...]) -> float:
        vis = self.vis
        return min(vis[p] for p in points)

    def angle(self, joints: Triple) -> float:
        """Angle at the middle joint in degrees (180 = straight), in the image plane."""
        a, b, c = joints
        x, y = self.x, self.y
        ux, uy = x[a] - x[b], y[a] - y[b]
        vx, vy = x[c] - x[b], y[c] - y[b]
        nu = math.hypot(ux, uy)
        nv = math.hypot(vx, vy)
        if nu < 1e-6 or nv < 1e-6:
            return 180.0
        cos = (ux * vx + uy * vy) / (nu * nv)
        return math.degrees(math.acos(max(-1.0, min(1.0, cos))))

    def side_angle(
        self, left: Triple, right: Triple, min_vis: float = 0.5, floor: float = 0.3
    ) -> float | None:
        """The joint angle of whichever side the camera sees; the mean when it sees both.

        In a side view the far limb is hidden and its keypoints are guesses, so only the near
        side is used; facing the camera (or from behind) both are seen and averaging halves
        the noise. None when neither side is seen well enough to judge.
        """
        vl = self.min_vis(left)
        vr = self.min_vis(right)
        if vl >= min_vis and vr >= min_vis:
            return 0.5 * (self.angle(left) + self.angle(right))
        if vl >= vr:
            return self.angle(left) if vl >= floor else None
        return self.angle(right) if vr >= floor else None

    def mid(self, a: int, b: int) -> tuple[float, float]:
        return 0.5 * (self.x[a] + self.x[b]), 0.5 * (self.y[a] + self.y[b])

    def dist(self, a: int, b: int) -> float:
        return math.hypot(self.x[a] - self.x[b], self.y[a] - self.y[b])

    def torso_length(self) -> float:
        """Mid-shoulder to mid-hip in pixels: the body length that normalises distances."""
        sx, sy = self.mid(L.LEFT_SHOULDER, L.RIGHT_SHOULDER)
        hx, hy = self.mid(L.LEFT_HIP, L.RIGHT_HIP)
        return math.hypot(sx - hx, sy - hy)

    def torso_from_vertical(self) -> float:
        """Angle of the hips->shoulders axis from the image's "up", in degrees (0 = upright,
        90 = lying). Uses the image vertical: lane cameras are mounted upright."""
        return self.axis_from_vertical(
            (L.LEFT_SHOULDER, L.RIGHT_SHOULDER), (L.LEFT_HIP, L.RIGHT_HIP)
        )

    def body_from_vertical(self) -> float:
        """Like `torso_from_vertical` but from the ankles when they are seen: the whole body's
        axis, which a sagging or piked torso does not tilt much."""
        if self.seen(L.LEFT_ANKLE, min_vis=0.5) or self.seen(L.RIGHT_ANKLE, min_vis=0.5):
            return self.axis_from_vertical(
                (L.LEFT_SHOULDER, L.RIGHT_SHOULDER), (L.LEFT_ANKLE, L.RIGHT_ANKLE)
            )
        return self.torso_from_vertical()

    def axis_from_vertical(self, upper: tuple[int, int], lower: tuple[int, int]) -> float:
        ux, uy = self._seen_mid(upper)
        lx, ly = self._seen_mid(lower)
        dx, dy = ux - lx, ly - uy  # up is -y in the image
        if abs(dx) < 1e-6 and abs(dy) < 1e-6:
            return 0.0
        return math.degrees(math.atan2(abs(dx), dy))

    def _seen_mid(self, pair: tuple[int, int]) -> tuple[float, float]:
        """Midpoint of a left/right pair, or the one seen point when only one is seen."""
        a, b = pair
        va, vb = self.vis[a], self.vis[b]
        if va >= 0.5 and vb < 0.5:
            return self.x[a], self.y[a]
        if vb >= 0.5 and va < 0.5:
            return self.x[b], self.y[b]
        return self.mid(a, b)


def read_body(pose: Pose | None, width: int = 0, height: int = 0) -> Body | None:
    """Plain-float view of a pose (None when nobody was found)."""
    if pose is None:
        return None
    rows = pose.landmarks.tolist()
    xs = tuple(r[0] if math.isfinite(r[0]) else 0.0 for r in rows)
    ys = tuple(r[1] if math.isfinite(r[1]) else 0.0 for r in rows)
    # A point without finite coordinates, or (when the image size is known) outside the
    # image, is not seen, whatever visibility the model gave it.
    if width > 0 and height > 0:
        mx, my = OFF_FRAME_MARGIN * width, OFF_FRAME_MARGIN * height
        lo_x, hi_x, lo_y, hi_y = -mx, width + mx, -my, height + my
        vis = tuple(
            r[3] if lo_x <= r[0] <= hi_x and lo_y <= r[1] <= hi_y and math.isfinite(r[3]) else 0.0
            for r in rows
        )
    else:
        vis = tuple(r[3] if math.isfinite(r[0] + r[1] + r[3]) else 0.0 for r in rows)
    return Body(x=xs, y=ys, vis=vis)
