from __future__ import annotations

from dataclasses import replace

import pytest

from khfsm.domain.events import FrameObserved, RepCounted, SessionPrepared
from khfsm.domain.face import FACE_CHECK
from khfsm.domain.replay import ReplayError, replay
from tests.domain.golden import (
    ALTERED,
    ALTERED_FRAME,
    GOLDEN_DIR,
    HISTORIES,
    IDENTICAL,
    read_jsonl,
)
from tests.domain.reference_exercise import EXERCISE


def test_checked_in_golden_history_replays_identically() -> None:
    events = read_jsonl(IDENTICAL)
    report = replay(events, EXERCISE)
    assert report.identical, report.divergence and report.divergence.describe()
    assert (report.recorded.count, report.recorded.total) == (3, 4)
    assert report.recorded.end_status == -1
    assert report.replayed.faults == {391: 1}


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_golden_files_still_match_what_the_engine_builds(name: str) -> None:
    # Guards the stored format: if this fails, the codec or the engine changed behaviour.
    assert read_jsonl(GOLDEN_DIR / name) == HISTORIES[name]()


@pytest.mark.parametrize("name", sorted(set(HISTORIES) - {ALTERED.name}))
def test_every_unaltered_golden_history_replays_identically(name: str) -> None:
    events = read_jsonl(GOLDEN_DIR / name)
    prepared = events[0]
    assert isinstance(prepared, SessionPrepared)
    task = FACE_CHECK if prepared.task == FACE_CHECK.task else EXERCISE
    report = replay(events, task)
    assert report.identical, report.divergence and report.divergence.describe()
    assert report.recorded == report.replayed


def test_altered_history_reports_the_exact_diverging_event() -> None:
    events = read_jsonl(ALTERED)
    report = replay(events, EXERCISE)
    assert not report.identical
    divergence = report.divergence
    assert divergence is not None
    altered_at = next(
        i for i, e in enumerate(events) if isinstance(e, FrameObserved) and e.frame == ALTERED_FRAME
    )
    assert divergence.index == altered_at + 1
    assert divergence.expected == events[altered_at + 1]
    assert isinstance(divergence.expected, FrameObserved)
    assert isinstance(divergence.got, RepCounted)
    assert (divergence.got.rep, divergence.got.end_frame) == (2, ALTERED_FRAME)
    assert "event" in divergence.describe() and "RepCounted" in divergence.describe()
    # The outcome changes too: rep 2 split in two, so one more valid rep.
    assert (report.recorded.count, report.replayed.count) == (3, 4)


def test_changed_rules_version_is_reported_not_ignored() -> None:
    events = read_jsonl(IDENTICAL)
    first = events[0]
    assert isinstance(first, SessionPrepared)
    events[0] = replace(first, rules_version="ref-0")
    with pytest.raises(ReplayError, match=r"rules ref-0.*installed rules are ref-1"):
        replay(events, EXERCISE)
    rescored = replay(events, EXERCISE, rescore=True)
    assert rescored.rescored and rescored.version_mismatch
    assert rescored.identical  # the same rules under another name judge the same
    assert rescored.replayed.count == 3
