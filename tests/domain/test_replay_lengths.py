"""Replay compares whole streams: a recorded stream one event shorter or longer than what the
rules derive is a divergence, never "identical" (a comparison of the common prefix would
accept a stream with its SessionEnded deleted)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from khfsm.domain.events import (
    Event,
    FrameObserved,
    RepCounted,
    SessionEnded,
    SessionStarted,
)
from khfsm.domain.face import FACE_CHECK
from khfsm.domain.replay import first_divergence, replay
from tests.domain.golden import build_session, face_history, golden_history
from tests.domain.reference_exercise import EXERCISE


def time_up_history() -> list[Event]:
    """Ends by time: the last frame itself derives the end (two reps, then 5 idle frames)."""
    events = build_session([80.0, 75.0], stop=False, frames=23)
    assert isinstance(events[-1], SessionEnded) and events[-1].status == -2
    return events


HISTORIES = {"stopped": golden_history, "time up": time_up_history}


@pytest.mark.parametrize("history", HISTORIES)
def test_the_complete_histories_replay_identically(history: str) -> None:
    assert replay(HISTORIES[history](), EXERCISE).identical


@pytest.mark.parametrize("history", HISTORIES)
def test_stream_with_its_end_deleted_is_not_identical(history: str) -> None:
    events = HISTORIES[history]()
    truncated = events[:-1]
    report = replay(truncated, EXERCISE)
    assert not report.identical
    divergence = report.divergence
    assert divergence is not None
    assert divergence.index == len(truncated)
    assert divergence.expected is None  # the record stops here...
    assert divergence.got == events[-1]  # ...where the rules end the session
    assert "(nothing)" in divergence.describe()


@pytest.mark.parametrize("history", HISTORIES)
def test_stream_with_an_event_after_its_end_is_not_identical(history: str) -> None:
    events = HISTORIES[history]()
    ended = events[-1]
    assert isinstance(ended, SessionEnded)
    for extra in (ended, replace(ended, count=ended.count + 1)):
        longer = [*events, extra]
        report = replay(longer, EXERCISE)
        assert not report.identical
        divergence = report.divergence
        assert divergence is not None
        assert (divergence.index, divergence.expected, divergence.got) == (len(events), extra, None)


def test_stream_missing_its_last_rep_is_not_identical() -> None:
    events = golden_history()
    last_rep = max(i for i, e in enumerate(events) if isinstance(e, RepCounted))
    report = replay(events[:last_rep] + events[last_rep + 1 :], EXERCISE)
    assert not report.identical
    assert report.divergence is not None and report.divergence.index == last_rep
    assert report.divergence.got == events[last_rep]


def test_stream_cut_mid_session_replays_as_an_unfinished_session() -> None:
    events = golden_history()
    frames = [i for i, e in enumerate(events) if isinstance(e, FrameObserved)]
    # A stream cut mid-session (no stop recorded) is what a crash leaves: it replays the
    # same, since nothing after the cut can be derived from what was recorded.
    cut = events[: frames[3] + 1]
    assert replay(cut, EXERCISE).identical


@pytest.mark.parametrize("shorter_side", ["expected", "got"])
def test_first_divergence_of_a_stream_and_its_prefix(shorter_side: str) -> None:
    events = golden_history()
    for length in (0, 1, len(events) // 2, len(events) - 1):
        prefix = events[:length]
        if shorter_side == "expected":
            divergence = first_divergence(prefix, events)
            assert divergence is not None
            assert (divergence.expected, divergence.got) == (None, events[length])
        else:
            divergence = first_divergence(events, prefix)
            assert divergence is not None
            assert (divergence.expected, divergence.got) == (events[length], None)
        assert divergence.index == length
    assert first_divergence(events, list(events)) is None
    assert first_divergence([], []) is None


def test_first_divergence_is_the_first_differing_event_not_a_later_one() -> None:
    events = golden_history()
    started = events[1]
    assert isinstance(started, SessionStarted)
    changed = [events[0], replace(started, started_at="2026-11-21T09:00:00+00:00"), *events[2:]]
    divergence = first_divergence(events, changed)
    assert divergence is not None and divergence.index == 1


@pytest.mark.parametrize("history", HISTORIES)
def test_frame_recorded_after_the_end_is_not_identical(history: str) -> None:
    events = HISTORIES[history]()
    ended = events[-1]
    assert isinstance(ended, SessionEnded)
    late = FrameObserved.of(ended.frames, None)
    report = replay([*events, late], EXERCISE)
    assert not report.identical
    divergence = report.divergence
    assert divergence is not None
    assert (divergence.index, divergence.expected, divergence.got) == (len(events), late, None)


@pytest.mark.parametrize(("accepted", "found"), [(True, True), (False, True), (False, False)])
def test_a_face_check_with_its_end_deleted_is_not_identical(accepted: bool, found: bool) -> None:
    """The face check's end is derived from its check (not copied from the stream), so a
    stream without it diverges where the end should be."""
    events = face_history(accepted, found)
    assert replay(events, FACE_CHECK).identical
    assert isinstance(events[-1], SessionEnded)
    report = replay(events[:-1], FACE_CHECK)
    assert not report.identical and report.divergence is not None
    assert report.divergence.index == len(events) - 1
