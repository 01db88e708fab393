"""One evolution of session state: the fold, the store's summary columns, the CLI's listing and
the live session's machine agree on every golden history, however the stream is batched."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from khfsm.cli.main import cli
from khfsm.domain.events import Event, SessionPrepared
from khfsm.domain.face import FACE_CHECK
from khfsm.domain.fold import SessionSummary, fold
from khfsm.domain.run import Drive
from khfsm.domain.task import Task
from khfsm.store.recorder import SessionRow
from khfsm.store.sql import SqlRecorder, open_recorder
from tests.domain.golden import ALTERED, GOLDEN_DIR, HISTORIES, read_jsonl
from tests.domain.reference_exercise import EXERCISE

SCALARS = ("state", "end_status", "count", "total", "frames", "events")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_empty_url"))


@pytest.fixture
def recorder(url: str) -> Iterator[SqlRecorder]:
    recorder = open_recorder(url, upgrade=True)
    try:
        yield recorder
    finally:
        recorder.close()


def _scalars(summary: SessionSummary) -> dict[str, object]:
    values = {name: getattr(summary, name) for name in SCALARS}
    values["state"] = summary.state.value
    return values


def _task(events: list[Event]) -> Task:
    prepared = events[0]
    assert isinstance(prepared, SessionPrepared)
    return FACE_CHECK if prepared.task == FACE_CHECK.task else EXERCISE


def _store(recorder: SqlRecorder, events: list[Event], batch: int) -> SessionRow:
    session_id = uuid.uuid4().hex
    for first in range(0, len(events), batch):
        recorder.append(session_id, first, events[first : first + batch])
    row = recorder.session(session_id)
    assert row is not None
    return row


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_fold_store_and_cli_agree(recorder: SqlRecorder, url: str, name: str) -> None:
    events = read_jsonl(GOLDEN_DIR / name)
    folded = fold(events)
    rows = [_store(recorder, events, batch) for batch in (1, 5, len(events))]
    for row in rows:
        assert _scalars(row.summary()) == _scalars(folded), f"batched store of {name}"

    listed = CliRunner().invoke(cli, ["sessions", "--json", "--database-url", url])
    assert listed.exit_code == 0, listed.output
    by_id = {entry["session_id"]: entry for entry in json.loads(listed.output)}
    for row in rows:
        entry = by_id[row.session_id]
        assert {name: entry[name] for name in SCALARS} == _scalars(folded)
        if folded.face is not None:  # the listing shows the face check's own outcome
            assert entry["outcome"] == folded.outcome
            assert entry["similarity"] == folded.face.similarity
        else:
            assert entry["outcome"].startswith(f"{folded.end_status} ")


@pytest.mark.parametrize("name", sorted(set(HISTORIES) - {ALTERED.name}))
def test_the_session_machine_ends_where_the_fold_does(name: str) -> None:
    events = read_jsonl(GOLDEN_DIR / name)
    inputs = [e for e in events if not e.DERIVED]
    drive = Drive(_task(events)).feed(inputs)
    assert drive.session.state == fold(events).state
    assert fold(drive.events) == fold(events)


def test_the_listing_words_a_face_check_by_its_outcome(url: str, recorder: SqlRecorder) -> None:
    for name in ("face_match.jsonl", "face_mismatch.jsonl", "face_no_face.jsonl"):
        _store(recorder, read_jsonl(GOLDEN_DIR / name), 2)
    table = CliRunner().invoke(cli, ["sessions", "--database-url", url])
    assert table.exit_code == 0, table.output
    assert "match (similarity 0.812, threshold 0.55)" in table.output
    assert "mismatch (similarity 0.204, threshold 0.55)" in table.output
    assert "no usable face" in table.output
    assert "time is up" not in table.output


def test_replay_words_a_face_check_by_its_outcome(url: str, recorder: SqlRecorder) -> None:
    row = _store(recorder, read_jsonl(GOLDEN_DIR / "face_no_face.jsonl"), 4)
    replayed = CliRunner().invoke(cli, ["replay", row.session_id, "--database-url", url])
    assert replayed.exit_code == 0, replayed.output
    assert "FaceDetection" in replayed.output and "face-1" in replayed.output
    assert "identical" in replayed.output and "no usable face" in replayed.output
    report = CliRunner().invoke(cli, ["replay", row.session_id, "--json", "--database-url", url])
    face = json.loads(report.output)["recorded"]["face"]
    assert face == {"outcome": 2, "similarity": 0.0, "threshold": 0.55}
