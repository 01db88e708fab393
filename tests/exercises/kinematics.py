"""A small kinematic generator: Pose sequences of known exercises from joint-angle trajectories.

A planar stick figure (side view, image pixels, y down) is posed from a few joint angles per
exercise; a trajectory of the main angle over time (rest -> goal -> rest, holds, bounces) makes
the frames. Gaussian pixel noise, dropped frames, a person entering or leaving, low visibility
of the far side (as in a real side view) and camera placement (scale, offset, mirroring) are
all parameters, so every rule can be exercised with a known answer.

Nothing here is random unless a seeded `numpy.random.Generator` is passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from khfsm.domain.events import SessionPrepared
from khfsm.domain.exercise import Exercise
from khfsm.domain.fold import SessionSummary, fold
from khfsm.domain.pose import Landmark as L
from khfsm.domain.pose import Pose
from khfsm.domain.run import judge_poses

FPS = 20.0
WIDTH, HEIGHT = 1280, 720

# Segment lengths in pixels at scale 1 (a person about 1.75 m tall seen ~600 px tall).
TORSO = 170.0
UPPER_ARM = 100.0
FOREARM = 95.0
THIGH = 145.0
SHIN = 135.0
NECK_TO_MOUTH = 0.45 * TORSO  # shoulders to mouth (the chin sits just below the mouth)
PX_PER_M = 340.0
FLOOR_Y = 640.0

Point = tuple[float, float]


def _dir(deg: float) -> Point:
    rad = math.radians(deg)
    return math.cos(rad), math.sin(rad)


def _add(p: Point, length: float, deg: float) -> Point:
    dx, dy = _dir(deg)
    return p[0] + length * dx, p[1] + length * dy


@dataclass(frozen=True)
class Figure:
    """Named 2D joints of one side of the body (the near side); the far side mirrors it."""

    shoulder: Point
    elbow: Point
    wrist: Point
    hip: Point
    knee: Point
    ankle: Point
    head: Point  # mouth
    face_dir: float  # degrees: where the face points (for eyes, nose, ears)


@dataclass(frozen=True)
class Camera:
    """Where the camera is: scale (distance), offset (framing), mirrored (facing the other
    way); the near side is the examinee's left unless `near_left` is False."""

    scale: float = 1.0
    offset: Point = (0.0, 0.0)
    mirrored: bool = False
    near_left: bool = True
    near_vis: float = 0.95
    far_vis: float = 0.3
    far_shift: Point = (6.0, -4.0)  # pixels between the near and far side's keypoints


def to_pose(fig: Figure, camera: Camera = Camera(), score: float = 0.99) -> Pose:
    """The 33 BlazePose landmarks (pixels, visibility, presence) and world metres."""
    lm = np.zeros((33, 5), dtype=np.float64)
    near, far = camera.near_vis, camera.far_vis
    left_vis, right_vis = (near, far) if camera.near_left else (far, near)
    fx, fy = camera.far_shift

    def put(index: int, p: Point, vis: float, shift: Point = (0.0, 0.0)) -> None:
        lm[index, 0] = p[0] + shift[0]
        lm[index, 1] = p[1] + shift[1]
        lm[index, 3] = vis
        lm[index, 4] = 0.99

    sides = (
        (True, left_vis, (0.0, 0.0) if camera.near_left else (fx, fy)),
        (False, right_vis, (fx, fy) if camera.near_left else (0.0, 0.0)),
    )
    for is_left, vis, shift in sides:
        s = 0 if is_left else 1
        put(L.LEFT_SHOULDER + s, fig.shoulder, vis, shift)
        put(L.LEFT_ELBOW + s, fig.elbow, vis, shift)
        put(L.LEFT_WRIST + s, fig.wrist, vis, shift)
        for hand in (L.LEFT_PINKY, L.LEFT_INDEX, L.LEFT_THUMB):
            put(hand + s, _toward(fig.elbow, fig.wrist, 1.15), vis * 0.9, shift)
        put(L.LEFT_HIP + s, fig.hip, vis, shift)
        put(L.LEFT_KNEE + s, fig.knee, vis, shift)
        put(L.LEFT_ANKLE + s, fig.ankle, vis, shift)
        put(L.LEFT_HEEL + s, _toward(fig.knee, fig.ankle, 1.08), vis, shift)
        put(L.LEFT_FOOT_INDEX + s, _toward(fig.knee, fig.ankle, 1.15), vis, shift)
        put(L.LEFT_EAR + s, _add(fig.head, 0.12 * TORSO, fig.face_dir + 180.0), vis, shift)
        put(L.MOUTH_LEFT + s, fig.head, 0.97, shift)
    nose = _add(fig.head, 0.12 * TORSO, fig.face_dir - 60.0)
    put(L.NOSE, nose, 0.99)
    for eye in (
        L.LEFT_EYE_INNER,
        L.LEFT_EYE,
        L.LEFT_EYE_OUTER,
        L.RIGHT_EYE_INNER,
        L.RIGHT_EYE,
        L.RIGHT_EYE_OUTER,
    ):
        put(eye, _add(nose, 0.05 * TORSO, fig.face_dir + 180.0 - 40.0), 0.98)

    # Camera placement: scale about the frame centre, shift, mirror.
    cx, cy = WIDTH / 2.0, HEIGHT / 2.0
    lm[:, 0] = cx + (lm[:, 0] - cx) * camera.scale + camera.offset[0]
    lm[:, 1] = cy + (lm[:, 1] - cy) * camera.scale + camera.offset[1]
    if camera.mirrored:
        lm[:, 0] = WIDTH - lm[:, 0]

    world = np.zeros((33, 3), dtype=np.float64)
    hx = 0.5 * (lm[L.LEFT_HIP, 0] + lm[L.RIGHT_HIP, 0])
    hy = 0.5 * (lm[L.LEFT_HIP, 1] + lm[L.RIGHT_HIP, 1])
    world[:, 0] = (lm[:, 0] - hx) / (PX_PER_M * camera.scale)
    world[:, 1] = (lm[:, 1] - hy) / (PX_PER_M * camera.scale)
    world[1::2, 2] = 0.1  # the two sides a little apart in depth
    return Pose(
        landmarks=lm.astype(np.float32),
        world=world.astype(np.float32),
        score=score,
    )


def _toward(a: Point, b: Point, t: float) -> Point:
    return a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t


def _triangle_apex(p: Point, q: Point, a: float, b: float, bend_sign: float) -> Point:
    """The point at distance a from p and b from q, on the side given by bend_sign."""
    dx, dy = q[0] - p[0], q[1] - p[1]
    d = max(math.hypot(dx, dy), 1e-6)
    d = min(d, a + b - 1e-6)
    x = (a * a - b * b + d * d) / (2 * d)
    h = math.sqrt(max(a * a - x * x, 0.0))
    ux, uy = dx / d, dy / d
    return p[0] + ux * x - bend_sign * uy * h, p[1] + uy * x + bend_sign * ux * h


def _arm_span(elbow_deg: float) -> float:
    """Shoulder-wrist distance for an elbow angle (law of cosines)."""
    e = math.radians(elbow_deg)
    return math.sqrt(UPPER_ARM**2 + FOREARM**2 - 2 * UPPER_ARM * FOREARM * math.cos(e))


# -- the exercises' figures --------------------------------------------------------------------


def pushup_figure(elbow: float, sag: float = 0.0, knee: float = 178.0) -> Figure:
    """Push-up, facing left: hands on the floor under the shoulders. `sag` rotates the torso
    toward the floor (degrees; negative = pike); `knee` < 180 bends the knees."""
    wrist = (420.0, FLOOR_Y)
    shoulder = (wrist[0], wrist[1] - _arm_span(elbow))
    elbow_pt = _triangle_apex(shoulder, wrist, UPPER_ARM, FOREARM, -1.0)  # elbows point back
    legs = THIGH + SHIN
    drop = FLOOR_Y - 10.0 - shoulder[1]
    slope = math.degrees(math.asin(max(-0.99, min(0.99, drop / (TORSO + legs)))))
    hip = _add(shoulder, TORSO, slope + sag)  # positive sag: hip lower (toward the floor)
    ankle = (shoulder[0] + (TORSO + legs) * math.cos(math.radians(slope)), FLOOR_Y - 10.0)
    knee_pt = _triangle_apex(hip, ankle, THIGH, SHIN, 0.0)
    if knee < 178.0:
        # Kneeling: the knee down on the floor, the shin folded up behind it.
        dy = FLOOR_Y - 5.0 - hip[1]
        knee_pt = (hip[0] + math.sqrt(max(THIGH**2 - dy**2, 0.0)), hip[1] + min(dy, THIGH))
        thigh_dir = math.degrees(math.atan2(knee_pt[1] - hip[1], knee_pt[0] - hip[0]))
        ankle = _add(knee_pt, SHIN, thigh_dir - (180.0 - knee))
    head = _add(shoulder, NECK_TO_MOUTH, slope + 180.0 + 10.0)
    return Figure(shoulder, elbow_pt, wrist, hip, knee_pt, ankle, head, face_dir=135.0)


def standing_figure(arms_up: bool = False) -> Figure:
    ankle = (640.0, FLOOR_Y)
    knee = (ankle[0], ankle[1] - SHIN)
    hip = (ankle[0], knee[1] - THIGH)
    shoulder = (hip[0], hip[1] - TORSO)
    if arms_up:
        elbow = (shoulder[0], shoulder[1] - UPPER_ARM)
        wrist = (shoulder[0], elbow[1] - FOREARM)
    else:
        elbow = (shoulder[0], shoulder[1] + UPPER_ARM)
        wrist = (shoulder[0], elbow[1] + FOREARM)
    head = (shoulder[0], shoulder[1] - NECK_TO_MOUTH)
    return Figure(shoulder, elbow, wrist, hip, knee, ankle, head, face_dir=180.0)


def squat_figure(knee: float, lean: float = 20.0) -> Figure:
    """Squat facing left; `lean` is the torso's angle from vertical (forward) at the bottom
    (knee 70 deg), less when standing."""
    lean = 5.0 + (lean - 5.0) * max(0.0, min(1.0, (175.0 - knee) / 105.0))
    ankle = (640.0, FLOOR_Y)
    shin_from_vertical = (180.0 - knee) * 0.45
    knee_pt = _add(ankle, SHIN, -90.0 - shin_from_vertical)  # knee forward (to the left)
    thigh_dir = -90.0 - shin_from_vertical + (180.0 - knee)  # rotate back (clockwise in image)
    hip = _add(knee_pt, THIGH, thigh_dir)
    shoulder = _add(hip, TORSO, -90.0 - lean)
    elbow = _add(shoulder, UPPER_ARM, 180.0)  # arms held forward
    wrist = _add(elbow, FOREARM, 180.0)
    head = _add(shoulder, NECK_TO_MOUTH, -90.0 - lean)
    return Figure(shoulder, elbow, wrist, hip, knee_pt, ankle, head, face_dir=180.0)


def situp_figure(hip_angle: float, hands_on_head: bool = True, knee: float = 90.0) -> Figure:
    """Lying on the back, head to the right, knees bent up to the left; `hip_angle` is the
    shoulder-hip-knee angle (about 150 lying, 50 sitting up)."""
    hip = (700.0, FLOOR_Y - 20.0)
    thigh_dir = 180.0 + 45.0 - (knee - 90.0) * 0.5  # thigh up and to the left
    knee_pt = _add(hip, THIGH, thigh_dir)
    shin_dir = thigh_dir + (180.0 - knee)  # shin folds back down to the floor
    ankle = _add(knee_pt, SHIN, shin_dir)
    torso_dir = thigh_dir + hip_angle  # rotate from the thigh toward the head side
    shoulder = _add(hip, TORSO, torso_dir)
    head = _add(shoulder, NECK_TO_MOUTH, torso_dir)
    if hands_on_head:
        elbow = _add(head, 0.55 * TORSO, torso_dir - 100.0)
        wrist = _add(head, 0.12 * TORSO, torso_dir + 160.0)
    else:
        elbow = _add(shoulder, UPPER_ARM, thigh_dir)  # arms reaching to the knees
        wrist = _add(elbow, FOREARM, thigh_dir)
    return Figure(shoulder, elbow, wrist, hip, knee_pt, ankle, head, face_dir=torso_dir - 90)


BAR_Y = 40.0


def hang_figure(elbow: float, hip: float = 178.0, bar_y: float = BAR_Y) -> Figure:
    """Hanging from a bar at `bar_y` facing left: pull-ups and the flexed-arm hang.
    `hip` < 180 raises the knees (a kick)."""
    wrist = (600.0, bar_y)
    shoulder = (wrist[0], wrist[1] + _arm_span(elbow))
    elbow_pt = _triangle_apex(wrist, shoulder, FOREARM, UPPER_ARM, 1.0)  # elbows forward
    hip_pt = (shoulder[0], shoulder[1] + TORSO)
    knee_pt = _add(hip_pt, THIGH, 90.0 + (180.0 - hip))  # thigh swings forward (left)
    ankle = _add(knee_pt, SHIN, 90.0)
    head = (shoulder[0] - 8.0, shoulder[1] - NECK_TO_MOUTH)
    return Figure(shoulder, elbow_pt, wrist, hip_pt, knee_pt, ankle, head, face_dir=180.0)


# -- trajectories ----------------------------------------------------------------------------


def _ease(t: float) -> float:
    return 0.5 - 0.5 * math.cos(math.pi * t)


def path(*segments: tuple[float, float], start: float, fps: float = FPS) -> list[float]:
    """Values from `start` through each (value, seconds) segment, eased, one per frame."""
    values: list[float] = []
    current = start
    for target, seconds in segments:
        n = max(1, round(seconds * fps))
        for i in range(1, n + 1):
            values.append(current + (target - current) * _ease(i / n))
        current = target
    return values


def reps(
    rest: float,
    goal: float,
    n: int,
    *,
    down_s: float = 0.8,
    up_s: float = 0.8,
    hold_rest_s: float = 0.5,
    hold_goal_s: float = 0.2,
    lead_s: float = 1.0,
    tail_s: float = 1.0,
    fps: float = FPS,
) -> list[float]:
    """`n` repetitions rest -> goal -> rest, with holds, preceded and followed by rest."""
    segments: list[tuple[float, float]] = [(rest, lead_s)]
    for _ in range(n):
        segments += [(goal, down_s), (goal, hold_goal_s), (rest, up_s), (rest, hold_rest_s)]
    segments.append((rest, tail_s))
    return path(*segments, start=rest, fps=fps)


@dataclass(frozen=True)
class Rep:
    """One repetition of a generated stream: how far it goes, where it comes back to, how fast."""

    bottom: float  # the extreme of the main angle (toward the goal)
    top: float  # where it comes back to (the rest value: locked out; less: not locked out)
    down_s: float = 0.8
    up_s: float = 0.8
    hold_s: float = 0.2  # at the bottom
    rest_s: float = 0.5  # at the top before the next repetition


def varied_reps(
    rest: float, plan: Sequence[Rep], *, lead_s: float = 1.0, tail_s: float = 1.0, fps: float = FPS
) -> list[float]:
    """The main angle over a session of repetitions that differ in depth, lockout and speed;
    starts and ends at `rest`."""
    segments: list[tuple[float, float]] = [(rest, lead_s)]
    for rep in plan:
        segments += [(rep.bottom, rep.down_s), (rep.bottom, rep.hold_s)]
        segments += [(rep.top, rep.up_s), (rep.top, rep.rest_s)]
    segments += [(rest, 0.8), (rest, tail_s)]
    return path(*segments, start=rest, fps=fps)


# -- rendering and running -------------------------------------------------------------------


@dataclass
class Clip:
    poses: list[Pose | None]
    fps: float = FPS
    width: int = WIDTH
    height: int = HEIGHT
    notes: list[str] = field(default_factory=list)

    def __add__(self, other: Clip) -> Clip:
        return Clip(self.poses + other.poses, self.fps, self.width, self.height)

    def __len__(self) -> int:
        return len(self.poses)


def render(
    figures: Iterable[Figure],
    *,
    camera: Camera = Camera(),
    noise_px: float = 0.0,
    rng: np.random.Generator | None = None,
    fps: float = FPS,
) -> Clip:
    poses: list[Pose | None] = []
    for fig in figures:
        pose = to_pose(fig, camera)
        if noise_px > 0:
            if rng is None:
                raise ValueError("noise needs a seeded rng")
            lm = pose.landmarks.copy()
            lm[:, :2] += rng.normal(0.0, noise_px * camera.scale, size=(33, 2)).astype(np.float32)
            pose = Pose(landmarks=lm, world=pose.world, score=pose.score)
        poses.append(pose)
    return Clip(poses, fps=fps)


def frames_of(values: Sequence[float], make: Callable[[float], Figure]) -> list[Figure]:
    return [make(v) for v in values]


def nobody(seconds: float, fps: float = FPS) -> Clip:
    return Clip([None] * round(seconds * fps), fps=fps)


def drop(clip: Clip, start_s: float, seconds: float) -> Clip:
    """The same clip with nobody found for `seconds` from `start_s` (a tracking loss)."""
    a = round(start_s * clip.fps)
    b = a + round(seconds * clip.fps)
    poses = [None if a <= i < b else p for i, p in enumerate(clip.poses)]
    return Clip(poses, clip.fps, clip.width, clip.height)


def run(exercise: Exercise, clip: Clip, level: int = 5, *, stop: bool = False) -> SessionSummary:
    """A whole session over the clip (ends by time-up on its last frame, or by a stop
    requested after it when `stop` is set); returns the folded summary."""
    prepared = SessionPrepared(
        task=exercise.task,
        capture_id=1,
        level=level,
        fps=clip.fps,
        frames=len(clip) + (1 if stop else 0),
        source="synthetic",
        video_path="",
        engine_version="test",
        rules_version=exercise.rules_version,
        frame_width=clip.width,
        frame_height=clip.height,
    )
    return fold(judge_poses(exercise, prepared, clip.poses))
