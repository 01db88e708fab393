"""`khfsm rescore` over sessions stored in a real event store (SQLite and PostgreSQL).

Sessions are recorded under `reference-1` (the tiny reference rules); `reference-2` is a
stricter release of them (a rep needs 25 frames, not 10), installed beside it as a rules
upgrade would be. The report must show, per session and per repetition, the recorded verdict
beside reference-2's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from khfsm.cli.main import cli
from khfsm.cli.rescore import RepPair, pair_reps
from khfsm.domain.events import Event, RepCounted
from khfsm.domain.exercise import RepJudged, RulesConfig, Verdict
from khfsm.domain.pose import Pose
from khfsm.registry import installed_tasks
from khfsm.store import migrate
from khfsm.store.sql import open_recorder
from tests.store.reference_exercise import (
    REFERENCE,
    TOO_FAST,
    ReferenceExercise,
    nose_track,
    record_session,
)

STRICT_FRAMES = 25


@dataclass(frozen=True)
class StricterReference(ReferenceExercise):
    """reference-2: the same attempts, but a rep under STRICT_FRAMES frames is too fast."""

    rules_version: str = "reference-2"

    def step(
        self, config: RulesConfig, state: Any, frame: int, pose: Pose | None
    ) -> tuple[Any, Sequence[Verdict]]:
        state, verdicts = super().step(config, state, frame, pose)
        return state, [_stricter(v) for v in verdicts]


def _stricter(verdict: Verdict) -> Verdict:
    if isinstance(verdict, RepJudged) and verdict.end_frame - verdict.start_frame < STRICT_FRAMES:
        return RepJudged(verdict.start_frame, verdict.end_frame, (TOO_FAST,), verdict.measurements)
    return verdict


NEWER = StricterReference()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    name = "sqlite_empty_url" if request.param == "sqlite" else "postgres_empty_url"
    empty: str = request.getfixturevalue(name)
    migrate.upgrade(empty)
    yield empty


@pytest.fixture(autouse=True)
def both_releases_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    releases = {REFERENCE.rules_version: REFERENCE, NEWER.rules_version: NEWER}
    monkeypatch.setitem(installed_tasks(), REFERENCE.task, releases)


def store(url: str, *sessions: list[Event]) -> list[str]:
    recorder = open_recorder(url)
    ids = []
    try:
        for events in sessions:
            session_id = uuid.uuid4().hex
            recorder.append(session_id, 0, events)
            ids.append(session_id)
    finally:
        recorder.close()
    return ids


def slow_and_fast(capture_id: int = 2, **kwargs: Any) -> list[Event]:
    """Four reps of 20 frames (valid under reference-1, too fast under -2), every second one
    of 3 frames (too fast under both)."""
    return record_session(nose_track(4, fast_every=2), capture_id=capture_id, **kwargs)


def rescore_json(url: str, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["rescore", "--json", "--database-url", url, *args])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def test_per_repetition_old_and_new_verdicts(url: str) -> None:
    [session_id] = store(url, slow_and_fast())
    report = rescore_json(url)
    assert (report["rescored"], report["changed"]) == (1, 1)
    [session] = report["sessions"]
    assert session["session_id"] == session_id and session["changed"]
    assert (session["old_rules_version"], session["new_rules_version"]) == (
        "reference-1",
        "reference-2",
    )
    old = [rep["old"]["status"] for rep in session["reps"]]
    new = [rep["new"]["status"] for rep in session["reps"]]
    assert old == [[0], [TOO_FAST], [0], [TOO_FAST]]
    assert new == [[TOO_FAST]] * 4
    assert [rep["changed"] for rep in session["reps"]] == [True, False, True, False]
    first = session["reps"][0]
    assert first["old"]["time"] == first["new"]["time"]  # the same attempt, paired by time
    assert (session["old"]["count"], session["new"]["count"]) == (2, 0)
    assert session["old"]["total"] == session["new"]["total"] == 4
    assert session["old"]["end_status"] == session["new"]["end_status"]


def test_the_table_shows_each_repetition_that_differs(url: str) -> None:
    [session_id] = store(url, slow_and_fast())
    result = CliRunner().invoke(cli, ["rescore", "--database-url", url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "1 session(s) re-scored under the newest rules, 1 changed" in result.output
    header = next(line for line in lines if session_id in line)
    assert "reference-1 -> reference-2" in header and "2/4" in header and "0/4" in header
    differing = [line for line in lines if "<- differs" in line]
    assert len(differing) == 2
    assert all("valid" in line and str(TOO_FAST) in line for line in differing)


def test_sessions_under_the_newest_rules_and_unended_ones_are_skipped_with_a_reason(
    url: str,
) -> None:
    unended = record_session(nose_track(2), frames=500)  # prepared for longer than recorded
    old, newest, running = store(url, slow_and_fast(), slow_and_fast(exercise=NEWER), unended)
    report = rescore_json(url)
    assert [s["session_id"] for s in report["sessions"]] == [old]
    reasons = {s["session_id"]: s["reason"] for s in report["skipped"]}
    assert "already judged by the newest rules reference-2" in reasons[newest]
    assert "not ended yet (running)" in reasons[running]


def test_filters_as_khfsm_sessions(url: str) -> None:
    lane_2, lane_3, stopped = store(
        url, slow_and_fast(2), slow_and_fast(3), slow_and_fast(3, stop_at=60)
    )
    ids = lambda *args: [s["session_id"] for s in rescore_json(url, *args)["sessions"]]  # noqa: E731
    assert ids() == [stopped, lane_3, lane_2]  # newest first
    assert ids("--capture", "3") == [stopped, lane_3]
    assert ids("--status", "-1") == [stopped]
    assert ids("--status", "-2", "--capture", "3") == [lane_3]
    assert ids("--task", "pushup") == []
    assert ids("--limit", "1") == [stopped]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert ids("--since", tomorrow) == []
    assert ids("--until", tomorrow) == [stopped, lane_3, lane_2]


def test_an_unreadable_store_is_a_clear_error() -> None:
    result = CliRunner().invoke(cli, ["rescore", "--database-url", "nosuch://x"])
    assert result.exit_code != 0 and "Traceback" not in result.output


def rep(start: int, end: int, status: tuple[int, ...] = (0,)) -> RepCounted:
    return RepCounted(1, status, start, end, (start / 20, end / 20), 0, 1)


def test_repetitions_pair_by_overlapping_frames() -> None:
    old = [rep(10, 30), rep(40, 60), rep(100, 120)]
    new = [rep(12, 28, (311,)), rep(70, 90), rep(101, 119)]
    pairs = pair_reps(old, new)
    assert pairs == [
        RepPair(old[0], new[0]),
        RepPair(old[1], None),  # the new rules found no attempt there
        RepPair(None, new[1]),  # an attempt only the new rules found
        RepPair(old[2], new[2]),
    ]
    assert [p.changed for p in pairs] == [True, True, True, False]
    assert pair_reps([], []) == []
