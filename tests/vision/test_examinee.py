"""The examinee rule as a pure function of the detector's candidates (no model, no video)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from khfsm.domain.events import ExamineeChanged, ExamineeLost
from khfsm.vision.examinee import (
    CONTINUITY_GATE,
    REACQUIRE_FRAMES,
    SETTLING_FRAMES,
    SETTLING_STRIDE,
    SWITCH_MARGIN,
    Change,
    Choice,
    Examinee,
    ExamineeChange,
    Frame,
    Person,
    choose,
    jumped,
    missed,
    seen,
)

FRAME = Frame(800, 450)  # centre (400, 225), diagonal ~918 px
RADIUS = 200.0
EXAMINEE = Person(430.0, 300.0, RADIUS)  # on the mat in the middle of the lane
PARTNER = Person(100.0, 380.0, RADIUS)  # kneeling at her feet, at the side
NEIGHBOUR = Person(760.0, 250.0, RADIUS)


def settled(at: Person) -> Examinee:
    return Examinee(last_seen=at, found=True, frames=SETTLING_FRAMES)


def test_first_choice_is_the_person_nearest_the_lane_centre_not_the_first_ranked() -> None:
    assert choose(Examinee(), [PARTNER, EXAMINEE, NEIGHBOUR], FRAME) == Choice(1, Change.CHOSEN)
    assert choose(Examinee(), [], FRAME) == Choice(None, None)


def test_a_clearly_more_central_person_replaces_the_first_choice_while_settling() -> None:
    # The first frame showed only the partner (the lying examinee was not detected).
    after_partner = seen(Examinee(), PARTNER, Change.CHOSEN)
    assert after_partner.settling
    assert choose(after_partner, [PARTNER, EXAMINEE], FRAME) == Choice(1, Change.SWITCHED)


def test_a_slightly_more_central_person_does_not_replace_the_first_choice() -> None:
    # Two people side by side are about equally central: detector jitter must not swap them.
    left = Person(300.0, 225.0, RADIUS)
    shift = (SWITCH_MARGIN * FRAME.diagonal) / 2  # nearer, but by less than the margin
    right = Person(400.0 + 100.0 + shift, 225.0, RADIUS)
    assert FRAME.off_centre(left) < FRAME.off_centre(right)
    following_right = seen(Examinee(), right, Change.CHOSEN)
    assert choose(following_right, [left, right], FRAME) == Choice(None, None)


def test_after_settling_nobody_else_is_taken_even_at_the_centre() -> None:
    proctor = Person(400.0, 225.0, RADIUS)  # walks right through the middle of the lane
    examinee = settled(Person(650.0, 300.0, RADIUS))
    assert not examinee.settling
    assert choose(examinee, [proctor], FRAME) == Choice(None, None)
    lost = missed(examinee)
    assert choose(lost, [proctor], FRAME) == Choice(None, None)


def test_after_a_long_absence_the_examinee_is_chosen_again_as_at_the_start() -> None:
    examinee = settled(Person(200.0, 300.0, RADIUS))
    for _ in range(REACQUIRE_FRAMES - 1):
        examinee = missed(examinee)
    walked_in = Person(420.0, 240.0, RADIUS)  # moved while out of sight
    assert choose(examinee, [walked_in, NEIGHBOUR], FRAME) == Choice(None, None)
    examinee = missed(examinee)
    assert examinee.missing == REACQUIRE_FRAMES
    assert choose(examinee, [NEIGHBOUR, walked_in], FRAME) == Choice(1, Change.CHOSEN)
    again = seen(examinee, walked_in, Change.CHOSEN)
    assert again.settling and again.missing == 0  # settling starts over


def test_a_lost_examinee_is_regained_only_by_a_candidate_continuing_her_track() -> None:
    lost = missed(settled(EXAMINEE))
    assert not lost.found
    near = Person(EXAMINEE.x + 0.5 * CONTINUITY_GATE * RADIUS, EXAMINEE.y, RADIUS)
    far = Person(EXAMINEE.x + 1.2 * CONTINUITY_GATE * RADIUS, EXAMINEE.y, RADIUS)
    assert choose(lost, [PARTNER, far, near], FRAME) == Choice(2, Change.REGAINED)
    assert choose(lost, [PARTNER, far], FRAME) == Choice(None, None)


def test_the_nearest_of_several_continuing_candidates_is_regained() -> None:
    lost = missed(settled(EXAMINEE))
    a = Person(EXAMINEE.x + 40.0, EXAMINEE.y, RADIUS)
    b = Person(EXAMINEE.x - 10.0, EXAMINEE.y + 5.0, RADIUS)
    assert choose(lost, [a, b], FRAME) == Choice(1, Change.REGAINED)


def test_while_followed_the_tracker_keeps_her() -> None:
    # The detector sees her and the partner: the landmark tracker's crop is kept.
    assert choose(settled(EXAMINEE), [PARTNER, EXAMINEE], FRAME) == Choice(None, None)


def test_a_jump_of_the_tracked_person_means_the_tracker_slid_onto_someone_else() -> None:
    examinee = settled(EXAMINEE)
    assert jumped(examinee, PARTNER)
    assert not jumped(examinee, Person(EXAMINEE.x + 20.0, EXAMINEE.y - 15.0, RADIUS))
    assert not jumped(missed(examinee), PARTNER)  # not followed: nothing to jump from


def test_the_settling_clock_starts_at_the_choice_and_runs_while_she_is_missed() -> None:
    examinee = seen(Examinee(), EXAMINEE, Change.CHOSEN)
    assert examinee.frames == 0
    for _ in range(SETTLING_FRAMES - 1):
        examinee = seen(examinee, EXAMINEE, None)
    examinee = missed(examinee)
    assert examinee.frames == SETTLING_FRAMES and not examinee.settling
    switched = seen(replace(examinee, frames=3), PARTNER, Change.SWITCHED)
    assert switched.frames == 4  # a switch does not restart settling
    assert missed(Examinee()) == Examinee()  # nobody chosen yet: nothing to count


def test_while_settling_the_detector_looks_at_every_stride_th_frame_then_no_more() -> None:
    assert Examinee().looking  # nobody chosen: every frame is looked at
    examinee = seen(Examinee(), EXAMINEE, Change.CHOSEN)
    looks = []
    for frame in range(2 * SETTLING_FRAMES):
        looks.append(examinee.looking)
        examinee = seen(examinee, EXAMINEE, None) if frame % 3 else missed(examinee)
    assert [i for i, look in enumerate(looks) if look] == list(
        range(0, SETTLING_FRAMES, SETTLING_STRIDE)
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ExamineeChange(Change.SWITCHED, Person(400.0, 225.0, RADIUS), 2),
            ExamineeChanged(frame=7, reason="switched", x=0.5, y=0.5, candidates=2),
        ),
        (
            ExamineeChange(Change.LOST, Person(200.0, 90.0, RADIUS), 1),
            ExamineeLost(frame=7, x=0.25, y=0.2, candidates=1),
        ),
    ],
)
def test_changes_become_session_events(change: ExamineeChange, expected: object) -> None:
    assert change.as_event(7, FRAME.width, FRAME.height) == expected


def test_person_from_normalised_alignment_points() -> None:
    person = Person.from_alignment((0.5, 0.5), (0.5, 0.1), 800, 450)
    assert (person.x, person.y) == (400.0, 225.0)
    assert person.radius == pytest.approx(180.0)
