"""An exam day's results as CSV and JSON (library and `khfsm results`), and `khfsm sessions`
showing the machine's and the reviewed result side by side."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

from click.testing import CliRunner

from khfsm.cli.main import cli
from khfsm.domain.fold import fold
from khfsm.review.decisions import record_decision
from khfsm.review.results import COLUMNS, day_results, to_csv, to_json
from tests.review.conftest import PUBLIC_URL, Store


def exam_day(store: Store) -> date:
    row = store.recorder.session(store.session_id)
    assert row is not None
    return row.created_at.astimezone().date()  # the server's local calendar day


def test_the_days_results_hold_the_machine_and_the_reviewed_result(store: Store) -> None:
    recorder, session = store.recorder, store.session_id
    machine = fold(recorder.events(session))
    day = exam_day(store)
    (row,) = day_results(recorder, day, public_url=PUBLIC_URL + "/")
    assert (row.session_id, row.task, row.level) == (session, "pushup", 5)
    assert (row.count, row.total, row.end_status) == (machine.count, machine.total, -2)
    assert row.end_message == "time is up" and not row.reviewed
    assert (row.reviewed_count, row.reviewed_total) == (machine.count, machine.total)
    assert row.evidence == f"{PUBLIC_URL}/ui/sessions/{session}"
    assert day_results(recorder, day + timedelta(days=1)) == []
    assert day_results(recorder, day - timedelta(days=1)) == []

    valid = next(rep.rep for rep in machine.reps if rep.valid)
    record_decision(recorder, session, "judge", valid, "overturn", "hips sagged")
    (reviewed,) = day_results(recorder, day)
    assert reviewed.reviewed and reviewed.reviewed_count == machine.count - 1
    assert reviewed.count == machine.count  # the machine's stays beside it
    assert (
        reviewed.reviewed_result == f"{machine.count - 1}/{machine.total} (rep {valid} overturned)"
    )

    parsed = list(csv.DictReader(io.StringIO(to_csv([reviewed]))))
    assert list(parsed[0]) == list(COLUMNS)
    assert parsed[0]["session_id"] == session and parsed[0]["reviewed_count"] == str(
        machine.count - 1
    )
    assert json.loads(to_json([reviewed])) == [reviewed.as_dict()]


def test_khfsm_results_prints_csv_and_json(store: Store) -> None:
    day = exam_day(store).isoformat()
    runner = CliRunner()
    as_csv = runner.invoke(cli, ["results", "--date", day, "--database-url", store.url])
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [r["session_id"] for r in rows] == [store.session_id]
    as_json = runner.invoke(
        cli, ["results", "--date", day, "--format", "json", "--database-url", store.url]
    )
    assert as_json.exit_code == 0
    assert json.loads(as_json.output)[0]["session_id"] == store.session_id
    wrong = runner.invoke(cli, ["results", "--date", "01/12/2026", "--database-url", store.url])
    assert wrong.exit_code == 2 and "%Y-%m-%d" in wrong.output


def test_khfsm_sessions_shows_both_results(store: Store) -> None:
    recorder, session = store.recorder, store.session_id
    machine = fold(recorder.events(session))
    runner = CliRunner()
    before = runner.invoke(cli, ["sessions", "--database-url", store.url])
    assert before.exit_code == 0 and "reviewed" in before.output
    (line,) = [line for line in before.output.splitlines() if session in line]
    assert f"{machine.count}/{machine.total}" in line and line.split("│")[-3].strip() == "-"

    invalid_or_first = next((r.rep for r in machine.reps if not r.valid), 1)
    record_decision(recorder, session, "judge", invalid_or_first, "overturn", "see video")
    after = runner.invoke(cli, ["sessions", "--database-url", store.url, "--json"])
    (listed,) = json.loads(after.output)
    assert (listed["count"], listed["total"]) == (machine.count, machine.total)
    assert listed["reviewed"] is True and listed["reviewed_total"] == machine.total
    expected = machine.count + (-1 if machine.reps[invalid_or_first - 1].valid else 1)
    assert listed["reviewed_count"] == expected
    table = runner.invoke(cli, ["sessions", "--database-url", store.url])
    assert f"{expected}/{machine.total} (rep {invalid_or_first}" in table.output
