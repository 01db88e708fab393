"""Verify, tampering, the evidence bundle, reviewers' decisions and results, over real HTTP
against sessions assessed by the live pipeline."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from khfsm.store import schema
from khfsm.store.engine import WRITE, create_store_engine
from tests.api.conftest import ApiServer


@pytest.fixture
def reviewer(api_server: ApiServer) -> Iterator[httpx.Client]:
    with api_server.client("reviewer") as client:
        yield client


def test_verify_intact(api_server: ApiServer, reviewer: httpx.Client) -> None:
    for session in (api_server.time_up["session"], api_server.stopped["session"]):
        report = reviewer.get(f"/sessions/{session}/verify").json()
        assert report["intact"] is True
        assert report["chain"]["ok"] is True and "intact" in report["chain"]["detail"]
        assert report["replay"]["identical"] is True and report["replay"]["divergence"] is None
    assert reviewer.get("/sessions/nope/verify").status_code == 404


def test_a_row_changed_by_sql_is_detected(api_server: ApiServer, reviewer: httpx.Client) -> None:
    session = api_server.stopped["session"]
    events = schema.events
    engine = create_store_engine(api_server.running.database_url)
    row = (events.c.session_id == session) & (events.c.seq == 10)
    try:
        with engine.connect() as connection:
            kind, original = connection.execute(
                select(events.c.type, events.c.payload).where(row)
            ).one()
        fields = json.loads(original)
        assert kind == "FrameObserved"
        fields["score"] = 0.123  # a forged detection score, canonical JSON like the codec's
        forged = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        _write(engine, update(events).where(row).values(payload=forged))
        try:
            report = reviewer.get(f"/sessions/{session}/verify").json()
        finally:
            _write(engine, update(events).where(row).values(payload=original))
    finally:
        engine.dispose()
    assert report["intact"] is False
    assert report["chain"]["ok"] is False and report["chain"]["first_bad_seq"] == 10
    assert "event 10 (FrameObserved) was altered" in report["chain"]["detail"]
    assert reviewer.get(f"/sessions/{session}/verify").json()["intact"] is True  # restored


def _write(engine: Any, statement: Any) -> None:
    with engine.connect().execution_options(**{WRITE: True}) as connection, connection.begin():
        connection.execute(statement)


def test_bundle_verifies_offline(
    api_server: ApiServer, reviewer: httpx.Client, tmp_path: Path
) -> None:
    session = api_server.time_up["session"]
    response = reviewer.get(f"/sessions/{session}/bundle")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert f"khfsm-{session}.zip" in response.headers["content-disposition"]
    path = tmp_path / "bundle.zip"
    path.write_bytes(response.content)
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        names = set(archive.namelist())
    assert {"manifest.json", "events.jsonl", "verify.json", "video.mp4"} <= names
    events = reviewer.get(f"/sessions/{session}/events", params={"limit": 5000}).json()["items"]
    assert manifest["chain"] == {"head": events[-1]["hash"], "events": len(events)}
    checked = subprocess.run(
        [sys.executable, "-m", "khfsm.cli.main", "bundle", "verify", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert reviewer.get("/sessions/nope/bundle").status_code == 404


def test_decisions_are_chained_and_shown(api_server: ApiServer, reviewer: httpx.Client) -> None:
    session = api_server.time_up["session"]
    path = f"/sessions/{session}"
    before = reviewer.get(path).json()
    assert before["repetitions"], "the clip's first push-up is counted"
    rep = before["repetitions"][0]
    ruling = {"target": 1, "decision": "overturn", "reason": "chest did not reach the floor"}
    response = reviewer.post(f"{path}/decisions", json=ruling)
    assert response.status_code == 201, response.text
    decision = response.json()
    events = reviewer.get(f"{path}/events", params={"limit": 5000}).json()["items"]
    assert decision["seq"] == events[-1]["seq"] and events[-1]["type"] == "ReviewDecided"
    assert decision["reviewer"] == "reviewer" and decision["target"] == 1
    assert decision["decision"] == "overturn" and decision["reason"] == ruling["reason"]
    datetime.fromisoformat(decision["at"])

    after = reviewer.get(path).json()
    assert after["decisions"][-1]["seq"] == decision["seq"]
    assert after["count"] == before["count"]  # the machine's result stays
    assert after["reviewed"] is True
    overturned = before["count"] - 1 if rep["valid"] else before["count"] + 1
    assert after["reviewed_count"] == overturned
    assert after["repetitions"][0]["overturned"] is True

    # Chained, and the machine's verdicts still replay bit for bit.
    report = reviewer.get(f"{path}/verify").json()
    assert report["intact"] is True, report
    listed = reviewer.get("/sessions", params={"reviewed": "true"}).json()["items"]
    assert [item["id"] for item in listed] == [session]
    assert session not in [
        item["id"]
        for item in reviewer.get("/sessions", params={"reviewed": "false"}).json()["items"]
    ]

    verdict = {"target": "verdict", "decision": "uphold", "reason": "time was up"}
    assert reviewer.post(f"{path}/decisions", json=verdict).status_code == 201
    assert reviewer.get(path).json()["review"]["verdict"] == "upheld"

    no_rep = reviewer.post(f"{path}/decisions", json={**ruling, "target": 99})
    assert no_rep.status_code == 409 and "99" in no_rep.json()["detail"]
    unknown = reviewer.post(f"{path}/decisions", json={**ruling, "decision": "maybe"})
    assert unknown.status_code == 409
    assert reviewer.post("/sessions/nope/decisions", json=ruling).status_code == 404
    with api_server.client("admin") as admin:
        audit = admin.get("/audit", params={"session": session, "user": "reviewer"}).json()
    decided = [entry for entry in audit if entry["action"] == "decide"]
    assert len(decided) == 2 and "overturn 1" in decided[-1]["detail"]


def test_results_of_the_day(api_server: ApiServer, reviewer: httpx.Client) -> None:
    today = datetime.now().date().isoformat()
    rows = reviewer.get("/results", params={"date": today}).json()
    assert {row["session_id"] for row in rows} == {
        api_server.time_up["session"],
        api_server.stopped["session"],
    }
    assert {"candidate", "task", "level", "count", "total", "end_status", "evidence"} <= set(
        rows[0]
    )
    response = reviewer.get("/results", params={"date": today, "format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert len(table) == 2 and table[0]["task"] == "pushup"
    assert reviewer.get("/results", params={"date": "1999-01-01"}).json() == []
    assert reviewer.get("/results", params={"date": "yesterday"}).status_code == 422
