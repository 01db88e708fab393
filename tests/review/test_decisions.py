"""Reviewers' rulings on a real assessed session: appended after the end, chained, never
changing a recorded event, replay still identical, the reviewed result beside the machine's."""

from __future__ import annotations

import threading

import pytest

from khfsm.domain.events import RepCounted, ReviewDecided, SessionEnded, SessionPrepared
from khfsm.domain.fold import fold
from khfsm.domain.replay import replay
from khfsm.domain.review import DecisionRefused, ReviewedResult, VerdictRuling, reviewed_result
from khfsm.registry import get_exercise
from khfsm.review.decisions import SessionNotFound, decision_dict, record_decision, review_of
from khfsm.review.verify import verify_session
from tests.review.conftest import Store

BACKENDS = ["store", "postgres_store"]


@pytest.fixture(params=BACKENDS)
def any_store(request: pytest.FixtureRequest) -> Store:
    store: Store = request.getfixturevalue(request.param)
    return store


def test_the_assessed_session_has_repetitions_to_rule_on(store: Store) -> None:
    events = store.recorder.events(store.session_id)
    reps = [e for e in events if isinstance(e, RepCounted)]
    assert len(reps) >= 2 and any(rep.valid for rep in reps)
    assert isinstance(events[-1], SessionEnded) and events[-1].video_sha256


def test_rulings_are_appended_after_the_end_chained_and_replay_stays_identical(
    any_store: Store,
) -> None:
    recorder, session = any_store.recorder, any_store.session_id
    before = recorder.read_records(session)
    machine = fold(recorder.events(session))
    first_valid = next(rep.rep for rep in machine.reps if rep.valid)

    overturn = record_decision(
        recorder,
        session,
        "judge.li",
        first_valid,
        "overturn",
        "chest did not reach the fist",
        at="2026-12-01T10:00:00+00:00",
    )
    uphold = record_decision(recorder, session, "judge.li", "verdict", "uphold", "time was up")

    assert (overturn.seq, uphold.seq) == (len(before), len(before) + 1)
    assert isinstance(overturn.event, ReviewDecided) and overturn.event.rep == first_valid
    assert overturn.event.at == "2026-12-01T10:00:00+00:00"
    assert isinstance(uphold.event, ReviewDecided) and uphold.event.at  # now, by default
    after = recorder.read_records(session)
    # Recorded events are never changed: the machine's rows are byte for byte as before.
    assert after[: len(before)] == before
    assert [row.record.type for row in after[len(before) :]] == ["ReviewDecided"] * 2
    assert after[len(before)].prev_hash == before[-1].hash  # the chain covers the rulings
    assert recorder.verify_chain(session).ok
    assert recorder.session(session).events == len(after)  # type: ignore[union-attr]

    events = recorder.events(session)
    assert isinstance(events[0], SessionPrepared)
    report = replay(events, get_exercise("pushup", events[0].rules_version))
    assert report.identical and report.recorded.count == machine.count
    assert verify_session(recorder, session)["intact"] is True

    review = review_of(recorder, session)
    result = review.result
    assert (result.machine_count, result.machine_total) == (machine.count, machine.total)
    assert (result.count, result.total) == (machine.count - 1, machine.total)
    assert result.overturned == (first_valid,) and result.verdict is VerdictRuling.UPHELD
    assert (
        result.describe() == f"{machine.count - 1}/{machine.total} (rep {first_valid} overturned)"
    )
    assert [decision_dict(d)["target"] for d in review.decisions] == [first_valid, "verdict"]
    assert decision_dict(review.decisions[1])["decision"] == "uphold"


def test_a_later_ruling_supersedes_an_earlier_one_and_both_stay(store: Store) -> None:
    recorder, session = store.recorder, store.session_id
    machine = fold(recorder.events(session))
    record_decision(recorder, session, "a", 1, "overturn", "looked short")
    record_decision(recorder, session, "b", "1", "uphold", "on the video it is deep enough")
    review = review_of(recorder, session)
    assert len(review.decisions) == 2
    assert review.result.count == machine.count and review.result.overturned == ()
    assert review.result.describe() == f"upheld {machine.count}/{machine.total}"


def test_rulings_that_cannot_be_made_are_refused_and_nothing_is_stored(store: Store) -> None:
    recorder, session = store.recorder, store.session_id
    total = fold(recorder.events(session)).total
    stored = recorder.session(session).events  # type: ignore[union-attr]
    refusals = {
        "there is no repetition 0": (0, "overturn", "x"),
        f"there is no repetition {total + 1}": (total + 1, "overturn", "x"),
        "neither 'uphold' nor 'overturn'": (1, "delete", "x"),
        "needs a reason": (1, "overturn", "   "),
        "neither a repetition number": ("rep one", "uphold", "x"),
    }
    for words, (target, decision, reason) in refusals.items():
        with pytest.raises(DecisionRefused, match=words):
            record_decision(recorder, session, "judge", target, decision, reason)
    with pytest.raises(DecisionRefused, match="not an ISO 8601 time"):
        record_decision(recorder, session, "judge", 1, "uphold", "x", at="yesterday")
    with pytest.raises(SessionNotFound):
        record_decision(recorder, "no-such-session", "judge", 1, "uphold", "x")
    assert recorder.session(session).events == stored  # type: ignore[union-attr]


def test_a_session_that_has_not_ended_takes_no_ruling(store: Store) -> None:
    recorder = store.recorder
    events = recorder.events(store.session_id)
    prepared, started = events[0], events[1]
    recorder.append("still-running", 0, [prepared, started])
    with pytest.raises(DecisionRefused, match="has not ended"):
        record_decision(recorder, "still-running", "judge", "verdict", "uphold", "x")


def test_simultaneous_rulings_are_both_stored_in_one_chain(postgres_store: Store) -> None:
    recorder, session = postgres_store.recorder, postgres_store.session_id
    before = recorder.session(session).events  # type: ignore[union-attr]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def rule(reviewer: str) -> None:
        barrier.wait()
        try:
            record_decision(recorder, session, reviewer, "verdict", "uphold", "agreed")
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=rule, args=(f"judge{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    review = review_of(recorder, session)
    reviewers = sorted(decision_dict(d)["reviewer"] for d in review.decisions)
    assert reviewers == [f"judge{i}" for i in range(4)]
    assert [d.seq for d in review.decisions] == list(range(before, before + 4))
    assert recorder.verify_chain(session).ok


def test_the_reviewed_result_follows_every_ruling_rule() -> None:
    from khfsm.domain.events import SessionEnded as Ended

    reps = tuple(
        RepCounted(rep=i, status=s, start_frame=0, end_frame=1, time=(0.0, 0.1), count=0, total=i)
        for i, s in ((1, (0,)), (2, (311,)), (3, (0,)))
    )
    ended = Ended(status=-3, message="stopped due to unallowed motion", frames=9, count=2, total=3)
    base = fold([*reps, ended])

    def with_rulings(*rulings: tuple[int | None, str]) -> ReviewedResult:
        decisions = tuple(
            ReviewDecided(reviewer="r", at="t", rep=rep, decision=d, reason="why")
            for rep, d in rulings
        )
        return reviewed_result(fold(decisions, base))

    plain = reviewed_result(base)
    assert (plain.count, plain.total, plain.reviewed, plain.describe()) == (
        2,
        3,
        False,
        "not reviewed",
    )
    flipped = with_rulings((2, "overturn"))  # an invalid repetition overturned counts
    assert (flipped.count, flipped.total, flipped.valid) == (3, 3, (True, True, True))
    twice = with_rulings((1, "overturn"), (1, "overturn"))  # relative to the machine: once
    assert (twice.count, twice.overturned) == (1, (1,))
    restored = with_rulings((1, "overturn"), (1, "uphold"))
    assert (restored.count, restored.overturned) == (2, ())
    void = with_rulings((None, "overturn"))
    assert void.verdict is VerdictRuling.OVERTURNED and void.count == 2
    assert void.describe() == "2/3, verdict overturned"
    assert void.verdict_reason == "why"
