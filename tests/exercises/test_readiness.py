"""Readiness before the start (`khfsm.exercises.common.readiness`) on rendered figures: a
push-up plank is in position, a standing person is not (and the report says why), nobody is
nobody, and a person partly out of the picture has the missing body parts named."""

from __future__ import annotations

import numpy as np
import pytest
from khfsm.exercises import pushup, pushup2, squat2
from khfsm.exercises.common.readiness import PART_LANDMARKS, readiness

from khfsm.domain.codec import decode, encode
from khfsm.domain.events import ReadinessReported
from khfsm.domain.pose import Pose
from khfsm.domain.readiness import BODY_PARTS, NO_PERSON, ReadinessReport
from tests.exercises.kinematics import HEIGHT, WIDTH, pushup_figure, standing_figure
from tests.exercises.kinematics3d import VIEWS, to_pose

PUSHUP2 = pushup2.Pushup2()


def shifted(pose: Pose, dx: float = 0.0, dy: float = 0.0) -> Pose:
    """`pose` as a camera aimed elsewhere sees it: the picture moved by (dx, dy) pixels."""
    landmarks = pose.landmarks.copy()
    landmarks[:, 0] += dx
    landmarks[:, 1] += dy
    return Pose(landmarks=landmarks, world=pose.world, score=pose.score)


def test_every_body_part_has_its_landmarks() -> None:
    assert tuple(PART_LANDMARKS) == BODY_PARTS


@pytest.mark.parametrize(
    ("camera", "view"), [("side", "side"), ("front", "front_back"), ("45 deg", "oblique")]
)
def test_a_plank_is_in_the_push_up_start_position_from_every_view(camera: str, view: str) -> None:
    pose = to_pose(pushup_figure(elbow=172.0), VIEWS[camera])
    report = readiness(pose, WIDTH, HEIGHT, 5, PUSHUP2)
    assert report == ReadinessReport(True, (), True, (), view)
    words = view.replace("_", "/")
    assert report.summary() == f"person in view ({words} view); in the start position"


def test_a_standing_person_is_not_in_the_push_up_start_position() -> None:
    pose = to_pose(standing_figure(), VIEWS["side"])
    report = readiness(pose, WIDTH, HEIGHT, 5, PUSHUP2)
    assert report.person and report.out_of_view == () and report.view == "side"
    assert report.in_position is False
    assert report.missing == ("not in the push-up position (body not horizontal)",)
    assert "not in the start position: not in the push-up position" in report.summary()


def test_nobody_in_view() -> None:
    assert readiness(None, WIDTH, HEIGHT, 5, PUSHUP2) == ReadinessReport(
        False, BODY_PARTS, False, (NO_PERSON,), "unknown"
    )
    assert readiness(None, WIDTH, HEIGHT, 5, pushup.Pushup()).in_position is None
    assert readiness(None, WIDTH, HEIGHT, 5, None).summary() == NO_PERSON


def test_legs_below_the_picture_are_named_out_of_view() -> None:
    standing = to_pose(standing_figure(), VIEWS["side"])
    report = readiness(shifted(standing, dy=200.0), WIDTH, HEIGHT, 5, squat2.Squat())
    assert report.person
    assert report.out_of_view == ("knees", "ankles")
    assert report.in_position is False and any("ankles" in m for m in report.missing)
    assert "out of view: knees, ankles" in report.summary()


def test_a_plank_with_its_feet_out_of_the_picture_is_not_ready_and_says_why() -> None:
    plank = to_pose(pushup_figure(elbow=172.0), VIEWS["side"])
    xs = plank.landmarks[:, 0]
    # Move the picture so that the feet leave it at whichever side they lie.
    ankle_x = float(xs[27])
    dx = (WIDTH + 200.0 - ankle_x) if ankle_x > float(np.mean(xs)) else -(ankle_x + 200.0)
    report = readiness(shifted(plank, dx=dx), WIDTH, HEIGHT, 5, PUSHUP2)
    assert report.person and "ankles" in report.out_of_view
    assert report.in_position is False
    assert "ankles not in view" in report.missing


def test_a_task_without_a_start_position_gets_person_parts_and_view() -> None:
    pose = to_pose(pushup_figure(elbow=172.0), VIEWS["side"])
    for task in (pushup.Pushup(), None, object()):
        report = readiness(pose, WIDTH, HEIGHT, 5, task)
        assert report == ReadinessReport(True, (), None, (), "side")
        assert report.summary() == "person in view (side view)"


def test_the_event_round_trips_through_the_codec() -> None:
    pose = to_pose(standing_figure(), VIEWS["side"])
    report = readiness(shifted(pose, dy=200.0), WIDTH, HEIGHT, 5, PUSHUP2)
    event = ReadinessReported.of("prepare", report)
    assert decode(encode(event)) == event
    assert event.report() == report
    record = encode(event)
    assert record.type == "ReadinessReported" and record.blob is None
