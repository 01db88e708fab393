"""The bar, for the exercises done hanging from it (pull-up, flexed-arm hang).

Everything is measured on the 3-D world landmarks (metres), so it reads the same from the
front, the side, behind or at 45 degrees. Heights are taken along a vertical `up` that the
rules calibrate from the body itself: hanging still with straight arms, the body's centre
of mass (about the hips) is straight below the grip, so grip minus hips is "up" whatever the
camera's height or tilt (`hang_axis`). Until such a hang has been seen, the camera's "up"
(world -y, `CAMERA_UP`) stands in, as `world.py` documents for every rule.

- The grip: the bar lies across the base of the fingers, so its height is that of the index
  and little-finger knuckles (BlazePose landmarks 17-20), both hands averaged (a bar is level,
  so averaging only halves the noise).
- The chin over the bar: the mouth height above the grip, in torso lengths (shoulders to hips,
  in 3-D), so it does not depend on the person's size or the camera distance. The chin itself
  is not a landmark: it sits one mouth-to-chin length (~5 cm, Farkas' facial norms) below the
  mouth, which is as large as the pose model's own error at the hands and face, so the rules
  judge the mouth against the grip and allow that error in their limits.
- On the bar: the forearms point up from the elbows (see `on_bar`).
"""

from __future__ import annotations

import math

from khfsm.domain.pose import Landmark as L

from .geometry import ELBOW_L, ELBOW_R
from .world import FLOOR, MIN_SEGMENT_M, Skeleton, Vec

# sin(30 deg): a forearm within 60 deg of vertical points up (or down, negated).
FOREARM_UP = 0.5
# Visibility from which the face and hands count as seen (the face is a guess from behind
# and still placed consistently by the model; below this it is not placed at all).
FACE_MIN_VIS = 0.3

_KNUCKLES = (L.LEFT_PINKY, L.RIGHT_PINKY, L.LEFT_INDEX, L.RIGHT_INDEX)
# Arms straight enough to calibrate the vertical from a hang: straight is 180 deg; a judge
# cannot see a bend under ~15 deg and the 3-D elbow of a straight arm reads ~15 deg short
# (the pose model's error on a straight limb). The pull-up's Level 5 hang limit.
STRAIGHT_ARM_DEG = 150.0
# The camera's "up" in world coordinates (y grows downward).
CAMERA_UP: Vec = (0.0, -1.0, 0.0)


def torso_m(sk: Skeleton) -> float:
    """Mid-shoulders to mid-hips in 3-D, metres (0.0 when degenerate)."""
    s = sk.mid(L.LEFT_SHOULDER, L.RIGHT_SHOULDER)
    h = sk.mid(L.LEFT_HIP, L.RIGHT_HIP)
    n = math.sqrt((s[0] - h[0]) ** 2 + (s[1] - h[1]) ** 2 + (s[2] - h[2]) ** 2)
    return n if n >= MIN_SEGMENT_M else 0.0


def grip(sk: Skeleton) -> Vec:
    """Where the bar is held: the mean of the four hand knuckles (world, metres)."""
    n = len(_KNUCKLES)
    return (
        sum(sk.wx[k] for k in _KNUCKLES) / n,
        sum(sk.wy[k] for k in _KNUCKLES) / n,
        sum(sk.wz[k] for k in _KNUCKLES) / n,
    )


def _unit(v: Vec) -> Vec | None:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if not n >= MIN_SEGMENT_M:  # also catches NaN
        return None
    return v[0] / n, v[1] / n, v[2] / n


def _height(a: Vec, b: Vec, up: Vec) -> float:
    """How far `a` is above `b` along `up`."""
    return (a[0] - b[0]) * up[0] + (a[1] - b[1]) * up[1] + (a[2] - b[2]) * up[2]


def hang_axis(sk: Skeleton) -> Vec | None:
    """Mid-hips to the grip as a unit vector when hanging with straight arms (the forearms
    up, the elbows at least `STRAIGHT_ARM_DEG`): the vertical. None otherwise, or when the
    hips are not seen."""
    vis = sk.image.vis
    if max(vis[L.LEFT_HIP], vis[L.RIGHT_HIP]) < FLOOR or on_bar(sk) is not True:
        return None
    elbow = elbow_deg(sk)
    if elbow is None or elbow < STRAIGHT_ARM_DEG:
        return None
    g, h = grip(sk), sk.mid(L.LEFT_HIP, L.RIGHT_HIP)
    return _unit((g[0] - h[0], g[1] - h[1], g[2] - h[2]))


def mouth_over_grip(sk: Skeleton, up: Vec = CAMERA_UP) -> float | None:
    """How far the mouth is above the grip, in torso lengths (negative: below the bar);
    None when the face or the hands are not seen or the torso is degenerate."""
    torso = torso_m(sk)
    vis = sk.image.vis
    if torso <= 0.0 or min(vis[L.MOUTH_LEFT], vis[L.MOUTH_RIGHT]) < FACE_MIN_VIS:
        return None
    if max(vis[L.LEFT_WRIST], vis[L.RIGHT_WRIST]) < FACE_MIN_VIS:
        return None
    value = _height(sk.mid(L.MOUTH_LEFT, L.MOUTH_RIGHT), grip(sk), up) / torso
    return value if math.isfinite(value) else None


def forearm_rise(sk: Skeleton, up: Vec = CAMERA_UP) -> float | None:
    """How steeply the forearms point up from the elbows: the sine of their elevation,
    1 straight up, 0 level, -1 straight down; both arms averaged when both are seen, else
    the seen one; None when no forearm is seen or the world estimate is degenerate."""
    vis = sk.image.vis
    rises: list[float] = []
    for elbow, wrist in ((L.LEFT_ELBOW, L.LEFT_WRIST), (L.RIGHT_ELBOW, L.RIGHT_WRIST)):
        if min(vis[elbow], vis[wrist]) < FACE_MIN_VIS:
            continue
        e, w = sk.point(elbow), sk.point(wrist)
        n = math.sqrt((w[0] - e[0]) ** 2 + (w[1] - e[1]) ** 2 + (w[2] - e[2]) ** 2)
        if n >= MIN_SEGMENT_M:
            rises.append(_height(w, e, up) / n)
    return sum(rises) / len(rises) if rises else None


def on_bar(sk: Skeleton, up: Vec = CAMERA_UP) -> bool | None:
    """True: hanging from the bar (the forearms point up, within 60 deg of vertical);
    False: the forearms point down (hands by the body: off the bar); None: in between, or
    not seen. Hanging, the forearms carry the body's weight in tension from the bar, so
    they point up at every stage of a pull-up or a hang; standing, with the hands at the
    sides, on the hips or crossed, they point down or sideways."""
    rise = forearm_rise(sk, up)
    if rise is None:
        return None
    if rise >= FOREARM_UP:
        return True
    if rise <= -FOREARM_UP:
        return False
    return None


def elbow_deg(sk: Skeleton) -> float | None:
    """The elbow angle in 3-D: the side the camera sees, both averaged when it sees both."""
    return sk.pair_angle(ELBOW_L, ELBOW_R)
