"""pullup-2, squat-2 and armhang-2 see the body, not the camera.

One movement per exercise, rendered through a pinhole camera from the side, the other side,
the front, 45 deg and high above (`kinematics3d.VIEWS`): every view must find the same
attempts and give the same verdicts, attempts below the standard included (counted in
`total` with their fault).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from khfsm.exercises import armhang2, pullup2, squat2

from khfsm.domain.fold import SessionSummary
from khfsm.domain.pose import Pose
from tests.exercises.kinematics import (
    BAR_Y,
    FLOOR_Y,
    FOREARM,
    NECK_TO_MOUTH,
    SHIN,
    THIGH,
    TORSO,
    UPPER_ARM,
    Clip,
    Figure,
    hang_figure,
    path,
    reps,
    run,
    standing_figure,
)
from tests.exercises.kinematics3d import VIEWS, PinholeCamera, render

HANG, TOP = 170.0, 35.0

# Pull-ups: a dead hang, three full ones; one that stops with the elbows at 90 deg (chin not
# over the bar); a full one that turns back up at 120 deg (never hangs straight again), so
# the next one starts from a bent-arm hang; one full one with the knees kicked up (a kip).
PULL_ELBOW = reps(HANG, TOP, 3, lead_s=1.5) + path(
    (90.0, 0.7),
    (HANG, 0.7),
    (HANG, 0.6),
    (TOP, 0.8),
    (120.0, 0.6),
    (TOP, 0.6),
    (HANG, 0.8),
    (HANG, 1.0),
    start=HANG,
)
KIP = path((TOP, 0.8), (TOP, 0.2), (HANG, 0.8), (HANG, 1.0), start=HANG)
KIP_HIP = path((95.0, 0.5), (178.0, 0.5), start=178.0) + [178.0] * (len(KIP) - 20)
PULL_FIGURES = [hang_figure(e) for e in PULL_ELBOW] + [
    hang_figure(e, hip=h) for e, h in zip(KIP, KIP_HIP, strict=True)
]
PULL_STATUSES = [
    (0,),
    (0,),
    (0,),
    (pullup2.CHIN_NOT_OVER_BAR,),
    (0,),
    (pullup2.NOT_FROM_HANG,),
    (pullup2.KIPPING,),
]


def squat_figure(knee: float, lean: float | None = None) -> Figure:
    """A squat facing left with the heels down: the shin tilts forward by 0.3 x the knee
    bend (39 deg at a knee of 50, inside the ankle's ~40 deg of dorsiflexion), the torso
    leans forward by 5 + 0.3 x the bend unless `lean` says otherwise (a hinge), the arms
    reach forward."""
    bend = 180.0 - knee
    shin_tilt = 0.3 * bend
    lean = 5.0 + 0.3 * bend if lean is None else lean

    def step(p: tuple[float, float], length: float, deg: float) -> tuple[float, float]:
        rad = math.radians(deg)
        return p[0] + length * math.cos(rad), p[1] + length * math.sin(rad)

    ankle = (640.0, FLOOR_Y)
    knee_pt = step(ankle, SHIN, -90.0 - shin_tilt)  # knee forward (to the left)
    hip = step(knee_pt, THIGH, -90.0 - shin_tilt + bend)  # thigh rotates back
    shoulder = step(hip, TORSO, -90.0 - lean)
    elbow = step(shoulder, 100.0, 180.0)
    wrist = step(elbow, 95.0, 180.0)
    head = step(shoulder, NECK_TO_MOUTH, -90.0 - lean)
    return Figure(shoulder, elbow, wrist, hip, knee_pt, ankle, head, face_dir=180.0)


# Squats: three deep ones (knee 50 deg), a half squat (knee 100), one that turns back down at
# 125 deg without standing up, then a deep one from there.
STAND, DEEP = 175.0, 50.0
SQUAT_KNEE = reps(STAND, DEEP, 3) + path(
    (100.0, 0.8),
    (STAND, 0.8),
    (STAND, 0.6),
    (DEEP, 0.8),
    (125.0, 0.6),
    (DEEP, 0.6),
    (STAND, 0.8),
    (STAND, 1.0),
    start=STAND,
)
SQUAT_STATUSES = [
    (0,),
    (0,),
    (0,),
    (squat2.NOT_DEEP_ENOUGH,),
    (squat2.NOT_STOOD_UP,),
    (0,),
]


def _run(exercise: object, figures: list[Figure], camera: PinholeCamera) -> SessionSummary:
    return run(exercise, render(figures, camera))  # type: ignore[arg-type]


@pytest.mark.parametrize("view", list(VIEWS))
def test_pullup_attempts_and_verdicts_are_the_same_from_every_view(view: str) -> None:
    summary = _run(pullup2.EXERCISE, PULL_FIGURES, VIEWS[view])
    assert [r.status for r in summary.reps] == PULL_STATUSES, [
        (r.status, dict(r.measurements)) for r in summary.reps
    ]
    assert (summary.total, summary.count) == (7, 4)
    assert summary.violation is None


@pytest.mark.parametrize("view", list(VIEWS))
def test_squat_attempts_and_verdicts_are_the_same_from_every_view(view: str) -> None:
    summary = _run(squat2.EXERCISE, [squat_figure(k) for k in SQUAT_KNEE], VIEWS[view])
    assert [r.status for r in summary.reps] == SQUAT_STATUSES, [
        (r.status, dict(r.measurements)) for r in summary.reps
    ]
    assert (summary.total, summary.count) == (6, 4)
    assert summary.violation is None


def test_attempt_windows_agree_across_views() -> None:
    for exercise, figures in (
        (pullup2.EXERCISE, PULL_FIGURES),
        (squat2.EXERCISE, [squat_figure(k) for k in SQUAT_KNEE]),
    ):
        windows = {
            view: [(r.start_frame, r.end_frame) for r in _run(exercise, figures, camera).reps]
            for view, camera in VIEWS.items()
        }
        side = windows["side"]
        for view, found in windows.items():
            assert len(found) == len(side)
            for (s0, e0), (s1, e1) in zip(side, found, strict=True):
                assert abs(s0 - s1) <= 2 and abs(e0 - e1) <= 2, (view, side, found)


def test_half_squat_reports_its_depth_against_the_limit() -> None:
    rep = _run(squat2.EXERCISE, [squat_figure(k) for k in SQUAT_KNEE], VIEWS["front"]).reps[3]
    m = rep.measurements
    assert m["thigh_above_parallel_deg"] > m["depth_limit_deg"]
    assert m["min_knee_deg"] > m["knee_depth_limit_deg"]
    assert m["min_knee_deg"] == pytest.approx(100.0, abs=3.0)


def test_pullups_that_never_hang_straight_are_attempts_with_their_fault() -> None:
    """Bent-arm "gym" pull-ups (the elbows never open past 130 deg): every one is found and
    judged 332, from every view."""
    elbow = path((130.0, 1.0), start=130.0) + reps(130.0, TOP, 4)[20:]
    for view, camera in VIEWS.items():
        summary = _run(pullup2.EXERCISE, [hang_figure(e) for e in elbow], camera)
        assert summary.total == 4, (view, [r.status for r in summary.reps])
        assert [r.status for r in summary.reps] == [(pullup2.NOT_FROM_HANG,)] * 4, view


def hold_figure(elbow: float) -> Figure:
    """Hanging facing left with the forearms near vertical (wrists 10 deg in front of the
    elbows) and the upper arms reaching back up to the shoulders, as in a real flexed-arm
    hang (the pull-up figure keeps the wrists over the shoulders, which lays the forearms
    flat at small elbow angles); 170 deg is a straight-arm hang below the bar."""
    forearm_tilt = 10.0
    upper = math.radians(elbow - forearm_tilt)  # upper arm from vertical, toward the back
    wrist = (600.0, BAR_Y)
    elbow_pt = (
        wrist[0] + FOREARM * math.sin(math.radians(forearm_tilt)),
        wrist[1] + FOREARM * math.cos(math.radians(forearm_tilt)),
    )
    shoulder = (
        elbow_pt[0] + UPPER_ARM * math.sin(upper),
        elbow_pt[1] - UPPER_ARM * math.cos(upper),
    )
    hip = (shoulder[0], shoulder[1] + TORSO)
    knee = (hip[0], hip[1] + THIGH)
    ankle = (knee[0], knee[1] + SHIN)
    head = (shoulder[0] - 8.0, shoulder[1] - NECK_TO_MOUTH)
    return Figure(shoulder, elbow_pt, wrist, hip, knee, ankle, head, face_dir=180.0)


# Flexed-arm hang: a dead hang, pulled up into the hold (elbows 40 deg) for 3.6 s, then the
# chin sinks (elbows open to 90 deg) and the examinee drops to a straight hang.
HOLD = 40.0
HOLD_ELBOW = path(
    (HANG, 1.0), (HOLD, 0.8), (HOLD, 3.6), (90.0, 0.6), (HANG, 0.6), (HANG, 1.0), start=HANG
)


@pytest.mark.parametrize("view", list(VIEWS))
def test_armhang_seconds_are_the_same_from_every_view(view: str) -> None:
    summary = _run(armhang2.EXERCISE, [hold_figure(e) for e in HOLD_ELBOW], VIEWS[view])
    seconds = [r for r in summary.reps if r.valid]
    assert len(seconds) == 4, [(r.status, dict(r.measurements)) for r in summary.reps]
    closing = summary.reps[-1]
    assert closing.status == (armhang2.CHIN_BELOW_BAR,)
    assert 4.0 <= closing.measurements["hold_s"] < 5.0
    assert (summary.total, summary.count) == (5, 4)


def test_armhang_false_start_is_not_the_test() -> None:
    """Passing through the position for half a second on the way up is not a hold of 0 s:
    the examinee settles and the real hold is timed."""
    elbow = path(
        (HANG, 1.0), (HOLD, 0.6), (HOLD, 0.3), (HANG, 0.6), (HANG, 1.0), (HOLD, 0.8),
        (HOLD, 2.0), (HANG, 0.6), (HANG, 0.5), start=HANG,
    )  # fmt: skip
    for view, camera in VIEWS.items():
        summary = _run(armhang2.EXERCISE, [hold_figure(e) for e in elbow], camera)
        assert summary.count == 2, (view, [(r.status, dict(r.measurements)) for r in summary.reps])
        assert summary.total == 3, view
        assert summary.reps[0].start_frame > 60, view  # the real hold, after the false start


def test_start_positions_from_every_view() -> None:
    for view, camera in VIEWS.items():
        dead_hang = render([hang_figure(HANG)], camera).poses[0]
        assert pullup2.start_position(dead_hang, 1280, 720).ready, view
        bent = render([hang_figure(100.0)], camera).poses[0]
        assert pullup2.start_position(bent, 1280, 720).missing == ("arms not straight",), view
        standing = render([standing_figure()], camera).poses[0]
        assert squat2.start_position(standing, 1280, 720).ready, view
        assert "hands not on the bar" in pullup2.start_position(standing, 1280, 720).missing
        crouched = render([squat_figure(DEEP)], camera).poses[0]
        assert squat2.start_position(crouched, 1280, 720).missing == ("not standing straight",)
        hold = render([hold_figure(HOLD)], camera).poses[0]
        assert armhang2.start_position(hold, 1280, 720).ready, view
        assert armhang2.start_position(dead_hang, 1280, 720).missing == ("arms not bent",)


def test_start_position_without_a_person() -> None:
    for module in (pullup2, squat2, armhang2):
        assert module.start_position(None).missing == ("no person in view",)
        assert module.EXERCISE.start_position(None) == module.start_position(None)


def _squash_depth(clip: Clip, factor: float) -> Clip:
    """The pose model under-reads depth (world z) in foreshortened views: scale it down."""
    poses: list[Pose | None] = []
    for pose in clip.poses:
        if pose is None:
            poses.append(None)
            continue
        world = pose.world.copy()
        world[:, 2] *= factor
        poses.append(Pose(landmarks=pose.landmarks, world=world, score=pose.score))
    return Clip(poses, clip.fps, clip.width, clip.height)


@pytest.mark.parametrize("view", ["front", "45 deg"])
def test_attempts_survive_depth_under_read_by_40_percent(view: str) -> None:
    """Pull-ups: every attempt found and judged the same (the elbows bend across the line of
    sight at most partly). Squats: every full squat and the bounce are still found; a thigh
    pointing at the camera reads steeper, so the half squat (~56 deg of thigh travel) can
    shrink below 40 deg from straight in front, under the 40 deg minimum: a known limit of judging
    depth from a camera in front of the examinee (see `squat2`)."""
    pulls = run(pullup2.EXERCISE, _squash_depth(render(PULL_FIGURES, VIEWS[view]), 0.6))
    assert [r.status for r in pulls.reps] == PULL_STATUSES
    squat_clip = render([squat_figure(k) for k in SQUAT_KNEE], VIEWS[view])
    squats = run(squat2.EXERCISE, _squash_depth(squat_clip, 0.6))
    assert squats.total >= 5
    assert [squat2.NOT_STOOD_UP in r.status for r in squats.reps].count(True) == 1


def _noisy(clip: Clip, seed: int, world_m: float = 0.015, image_px: float = 2.0) -> Clip:
    """Keypoint noise as a pose model has it: ~1.5 cm in the world estimate, 2 px in the
    image, independent per landmark and frame."""
    rng = np.random.default_rng(seed)
    poses: list[Pose | None] = []
    for pose in clip.poses:
        if pose is None:
            poses.append(None)
            continue
        lm = pose.landmarks.copy()
        lm[:, :2] += rng.normal(0.0, image_px, size=(33, 2)).astype(np.float32)
        world = pose.world + rng.normal(0.0, world_m, size=(33, 3)).astype(np.float32)
        poses.append(Pose(landmarks=lm, world=world, score=pose.score))
    return Clip(poses, clip.fps, clip.width, clip.height)


@pytest.mark.parametrize("seed", range(3))
def test_keypoint_noise_changes_no_attempt(seed: int) -> None:
    camera = VIEWS["45 deg"]
    pulls = run(pullup2.EXERCISE, _noisy(render(PULL_FIGURES, camera), seed))
    assert [r.status for r in pulls.reps] == PULL_STATUSES
    squats = run(
        squat2.EXERCISE, _noisy(render([squat_figure(k) for k in SQUAT_KNEE], camera), seed)
    )
    assert [r.status for r in squats.reps] == SQUAT_STATUSES


def test_a_tracking_loss_in_the_hang_loses_no_pullup() -> None:
    clip = render(PULL_FIGURES, VIEWS["front"])
    a, b = 8, 20  # 0.6 s of the opening dead hang
    lost = Clip([None if a <= i < b else p for i, p in enumerate(clip.poses)])
    assert [r.status for r in run(pullup2.EXERCISE, lost).reps] == PULL_STATUSES


def test_standing_and_hinging_are_not_attempts() -> None:
    """Standing under the bar with the arms down is no pull-up (the elbows are straight, but
    the forearms do not point up at a bar); bending down to pick something up with the legs
    nearly straight (a hinge: torso 70 deg forward, knees at 160) is no squat."""
    standing = [standing_figure()] * 60
    for view, camera in VIEWS.items():
        assert run(pullup2.EXERCISE, render(standing, camera)).total == 0, view
        hinge = path((160.0, 0.8), (160.0, 0.5), (STAND, 0.8), (STAND, 1.0), start=STAND)
        leans = path((70.0, 0.8), (70.0, 0.5), (5.0, 0.8), (5.0, 1.0), start=5.0)
        figures = [squat_figure(STAND)] * 20 + [
            squat_figure(k, lean=x) for k, x in zip(hinge, leans, strict=True)
        ]
        assert run(squat2.EXERCISE, render(figures, camera)).total == 0, view


@pytest.mark.xfail(
    strict=True,
    reason="attempts.py: after a gap the median of three still holds the pre-gap value for "
    "one frame, so a pose that changed during the gap jumps over a single frame and reads "
    "as a cut (speed > max_speed); the pull in progress is dropped",
)
def test_a_tracking_loss_mid_pull_keeps_the_pull() -> None:
    clip = render(PULL_FIGURES, VIEWS["front"])
    a, b = 30, 42  # 0.6 s from the first pull's start: the pose changes during the loss
    lost = Clip([None if a <= i < b else p for i, p in enumerate(clip.poses)])
    assert [r.status for r in run(pullup2.EXERCISE, lost).reps] == PULL_STATUSES
