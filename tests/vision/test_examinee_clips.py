"""Which person is followed on the real clips with two people in view.

- situp_24: a partner holds the examinee's feet (the standard sit-up setup); the partner sits
  at the left edge (hips at x < 0.25 of the width), the examinee lies on the mat in the middle
  (hips at x ~0.5-0.65). MediaPipe's first-ranked detection is the partner in most frames.
- pushup_27: an adult (head to the left, hips near the middle) and a child beside him, to the
  right; the labels count the adult.
- pullup_23: two athletes side by side on one rig; the labels count the right-hand one (hips
  at x ~0.7; the left one's at ~0.35).

Keypoints come from `cached_keypoints` (KHFSM_KEYPOINT_CACHE shares one extraction between
checkouts; its key includes the extraction version, so keypoints from before the examinee
rule are never reused).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from khfsm.assess import Keypoints, cached_keypoints, judge_keypoints, sampled_frames
from khfsm.domain.events import ExamineeChanged, ExamineeLost, FrameObserved, SessionPrepared
from khfsm.domain.replay import replay
from khfsm.registry import get_exercise
from khfsm.vision.examinee import SETTLING_STRIDE, Change
from khfsm.vision.pose import PoseTracker, load_pose_models

pytestmark = pytest.mark.video

FPS = 20.0
SITUP = "situp_24_junghoonji_girls.mp4"
PUSHUP = "pushup_27_alvolate_twopeople.mp4"
PULLUP = "pullup_23_davide_twopeople.mp4"
LEFT_HIP, RIGHT_HIP, NOSE = 23, 24, 0


@pytest.fixture(scope="module")
def clip(request: pytest.FixtureRequest, videos: Path) -> Callable[[str], Keypoints]:
    configured = os.environ.get("KHFSM_KEYPOINT_CACHE")
    cache = Path(configured) if configured else Path(request.config.cache.mkdir("khfsm-keypoints"))
    return lambda name: cached_keypoints(videos / name, FPS, cache)


def hips_x(keypoints: Keypoints) -> np.ndarray:
    """Hip centre x of the followed person per frame, as a fraction of the width."""
    return keypoints.landmarks[:, [LEFT_HIP, RIGHT_HIP], 0].mean(axis=1) / keypoints.frame_width


def switches(keypoints: Keypoints) -> list[ExamineeChanged]:
    return [
        e for e in keypoints.examinee if isinstance(e, ExamineeChanged) and e.reason == "switched"
    ]


def test_situp_24_follows_the_examinee_not_the_partner_holding_her_feet(
    clip: Callable[[str], Keypoints],
) -> None:
    keypoints = clip(SITUP)
    first = keypoints.examinee[0]
    assert isinstance(first, ExamineeChanged) and first.reason == "chosen" and first.frame == 0
    # The first frame shows only the partner (the detector misses the examinee lying down);
    # within the settling time the examinee, nearer the lane centre, replaces her.
    [switch] = switches(keypoints)
    assert switch.frame < FPS and switch.candidates >= 2 and 0.4 < switch.x < 0.8
    # Nobody else is chosen after the switch: every later change is about the examinee.
    later = [e for e in keypoints.examinee if e.frame > switch.frame]
    assert all(e.x > 0.35 for e in later), later
    followed = keypoints.present[switch.frame :]
    x = hips_x(keypoints)[switch.frame :][followed]
    assert followed.mean() > 0.9
    # At the top of a sit-up the examinee's folded body overlaps the partner holding her
    # feet, and the landmark model's hips can slide towards the partner's for a moment
    # before coming back (seen for 10 frames on one CPU's arithmetic, none on another's):
    # a limit of the model on overlapping people, not a choice of the partner.
    on_partner = int((x <= 0.35).sum())
    assert on_partner <= 0.05 * len(x), f"partner's hips followed in {on_partner} frames"


def test_pushup_27_follows_the_adult(clip: Callable[[str], Keypoints]) -> None:
    keypoints = clip(PUSHUP)
    assert not switches(keypoints)
    present = keypoints.present
    # He may be lost for a moment (a loss is recorded, nobody is followed instead).
    assert present.mean() > 0.95
    nose_x = keypoints.landmarks[present, NOSE, 0] / keypoints.frame_width
    # The adult's head is at the left, the child is to his right.
    assert (nose_x < 0.5).all() and (hips_x(keypoints)[present] < 0.65).all()


def test_pullup_23_follows_the_right_hand_athlete(clip: Callable[[str], Keypoints]) -> None:
    keypoints = clip(PULLUP)
    assert not switches(keypoints)
    assert keypoints.present.all()
    assert (hips_x(keypoints) > 0.55).all()


def test_the_switch_is_recorded_in_the_session_and_replays(
    clip: Callable[[str], Keypoints], tmp_path: Path
) -> None:
    from khfsm.store import open_recorder

    keypoints = clip(SITUP)
    recorder = open_recorder(f"sqlite:///{tmp_path / 'khfsm.sqlite'}", upgrade=True)
    try:
        session_id, _, _ = judge_keypoints(keypoints, get_exercise("situp"), 5, recorder=recorder)
        events = recorder.events(session_id)
    finally:
        recorder.close()
    recorded = [e for e in events if isinstance(e, ExamineeChanged | ExamineeLost)]
    assert recorded == list(keypoints.examinee)
    [switch] = [e for e in recorded if isinstance(e, ExamineeChanged) and e.reason == "switched"]
    at = events.index(switch)
    after = events[at + 1]
    assert isinstance(after, FrameObserved) and after.frame == switch.frame
    prepared = events[0]
    assert isinstance(prepared, SessionPrepared)
    assert replay(events, get_exercise("situp", prepared.rules_version)).identical


def test_without_the_rule_mediapipe_follows_the_partner(videos: Path) -> None:
    """What the tracker did before the examinee rule: the partner, from the first frame on."""
    models = load_pose_models()
    ours, theirs = PoseTracker(models), PoseTracker(models, examinee_rule=False)
    changes = []
    for k, frame in sampled_frames(videos / SITUP, FPS):
        if k == 14:
            break
        mine, mediapipe = ours.step(frame), theirs.step(frame)
        changes.append(mine.examinee and mine.examinee.change)
        assert mine.estimate is not None and mediapipe.estimate is not None
        width = frame.shape[1]
        if Change.SWITCHED in changes:  # from the switch on, ours is the examinee
            assert mine.estimate.landmarks[[LEFT_HIP, RIGHT_HIP], 0].mean() / width > 0.35
        if k >= 8:
            assert mediapipe.estimate.landmarks[[LEFT_HIP, RIGHT_HIP], 0].mean() / width < 0.25
    # The detector looks every SETTLING_STRIDE frames while settling: the switch comes
    # within the first few looks.
    assert changes[0] is Change.CHOSEN and Change.SWITCHED in changes[: 3 * SETTLING_STRIDE]
