"""ExamineeChanged / ExamineeLost: stored, chained and replayed like every other input."""

from __future__ import annotations

import pytest

from khfsm.domain.codec import GENESIS_HASH, chain_hash, decode, encode
from khfsm.domain.events import Event, ExamineeChanged, ExamineeLost, FrameObserved
from khfsm.domain.replay import replay
from tests.domain.golden import IDENTICAL, golden_history, read_jsonl
from tests.domain.reference_exercise import EXERCISE

CHOSEN = ExamineeChanged(frame=0, reason="chosen", x=0.16, y=0.85, candidates=1)
SWITCHED = ExamineeChanged(frame=6, reason="switched", x=0.62, y=0.74, candidates=2)
LOST = ExamineeLost(frame=30, x=0.6, y=0.75, candidates=1)


def with_examinee_events(events: list[Event]) -> list[Event]:
    """The stream as the pipeline records it: each change just before its frame."""
    notes: dict[int, Event] = {CHOSEN.frame: CHOSEN, SWITCHED.frame: SWITCHED, LOST.frame: LOST}
    out: list[Event] = []
    for event in events:
        if isinstance(event, FrameObserved) and event.frame in notes:
            out.append(notes[event.frame])
        out.append(event)
    return out


@pytest.mark.parametrize("event", [CHOSEN, SWITCHED, LOST])
def test_codec_round_trip(event: Event) -> None:
    record = encode(event)
    assert record.type == type(event).__name__ and record.blob is None
    assert decode(record) == event


def test_records_are_canonical_and_chained() -> None:
    record = encode(SWITCHED)
    assert record.payload == '{"candidates":2,"frame":6,"reason":"switched","x":0.62,"y":0.74}'
    assert chain_hash(GENESIS_HASH, "s", 3, record) != chain_hash(
        GENESIS_HASH, "s", 3, encode(CHOSEN)
    )


def test_existing_golden_history_is_byte_identical() -> None:
    # Adding event types must not change how the existing ones are stored.
    assert read_jsonl(IDENTICAL) == golden_history()


def test_a_stream_with_examinee_changes_replays_identically() -> None:
    events = with_examinee_events(golden_history())
    assert sum(isinstance(e, ExamineeChanged | ExamineeLost) for e in events) == 3
    report = replay(events, EXERCISE)
    assert report.identical, report.divergence and report.divergence.describe()
    # The rules never read them: the same verdicts as the stream without them.
    plain = replay(golden_history(), EXERCISE)
    assert report.replayed.reps == plain.replayed.reps
    assert (report.replayed.count, report.replayed.total) == (3, 4)
