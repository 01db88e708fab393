"""Rulings beside every golden history: replay keeps them as it keeps any recorded input,
re-derives exactly the machine's verdicts, and still reports an altered history's divergence."""

from __future__ import annotations

import pytest

from khfsm.domain.codec import decode, encode
from khfsm.domain.events import Event, ReviewDecided
from khfsm.domain.fold import fold
from khfsm.domain.replay import replay
from khfsm.domain.review import decide, reviewed_result
from tests.domain.golden import ALTERED, GOLDEN_DIR, read_jsonl
from tests.domain.reference_exercise import EXERCISE

EXERCISE_HISTORIES = sorted(
    path.name
    for path in GOLDEN_DIR.glob("reference_*.jsonl")
    if path.name != ALTERED.name and fold(read_jsonl(path)).ended
)


def with_rulings(events: list[Event]) -> list[Event]:
    summary = fold(events)
    rulings: list[Event] = []
    for rep in summary.reps[:2]:
        rulings.append(
            decide(
                summary,
                reviewer="judge",
                target=rep.rep,
                decision="overturn",
                reason="seen on the video",
                at="2026-12-01T10:00:00+00:00",
            )
        )
    rulings.append(
        decide(
            summary,
            reviewer="judge",
            target="verdict",
            decision="uphold",
            reason="fair end",
            at="2026-12-01T10:05:00+00:00",
        )
    )
    # Through the codec, as the store keeps them.
    return [*events, *(decode(encode(ruling)) for ruling in rulings)]


@pytest.mark.parametrize("name", EXERCISE_HISTORIES)
def test_replay_of_a_reviewed_session_is_identical_and_the_machine_result_unchanged(
    name: str,
) -> None:
    events = read_jsonl(GOLDEN_DIR / name)
    reviewed = with_rulings(events)
    report = replay(reviewed, EXERCISE)
    assert report.identical, report.divergence
    machine, after = fold(events), report.replayed
    assert (after.count, after.total, after.end_status) == (
        machine.count,
        machine.total,
        machine.end_status,
    )
    assert [type(e) for e in reviewed[len(events) :]] == [ReviewDecided] * len(after.decisions)
    result = reviewed_result(after)
    flipped = sum(1 if not rep.valid else -1 for rep in machine.reps[:2])
    assert result.count == machine.count + flipped and result.total == machine.total


def test_an_altered_history_still_diverges_with_rulings_after_it() -> None:
    events = with_rulings(read_jsonl(ALTERED))
    report = replay(events, EXERCISE)
    assert not report.identical and report.divergence is not None
    assert report.divergence.index < len(read_jsonl(ALTERED))  # found before the rulings
