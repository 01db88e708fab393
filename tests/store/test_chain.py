"""Hash-chain verification as a function of the stored rows: each kind of tampering gets its
own finding (first bad row, message), and database URLs never show a password.

Mutation testing (benchmarks/mutation.py) showed the link check and the reports' fields
unchecked: a rewritten row that is re-hashed consistently, but no longer links, passed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from khfsm.domain.codec import chain_hash, encode
from khfsm.store.recorder import GENESIS_HASH, SessionRow, StoredRecord, check_chain
from khfsm.store.sql import open_recorder
from khfsm.store.urls import parse_url, redact_database_url, sqlite_path
from tests.domain.golden import golden_history

SESSION = "ab" * 16
AT = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def stored_rows(session_id: str = SESSION) -> list[StoredRecord]:
    rows: list[StoredRecord] = []
    previous = GENESIS_HASH
    for seq, event in enumerate(golden_history()):
        record = encode(event)
        digest = chain_hash(previous, session_id, seq, record)
        rows.append(StoredRecord(session_id, seq, record, digest, previous, AT))
        previous = digest
    return rows


def summary_of(rows: list[StoredRecord], events: int | None = None) -> SessionRow:
    count = len(rows) if events is None else events
    return SessionRow(SESSION, "reference", 2, 5, "ref-1", AT, AT, "stopped", -1, 3, 4, 0, count)


def test_intact_chain() -> None:
    rows = stored_rows()
    report = check_chain(SESSION, rows, summary_of(rows))
    assert (report.ok, report.first_bad_seq, report.events) == (True, None, len(rows))
    assert report.message == f"hash chain intact over {len(rows)} events"


def test_a_rewritten_row_rehashed_but_not_linking_is_found() -> None:
    rows = stored_rows()
    forged = replace(rows[5].record, payload=rows[5].record.payload.replace("1", "2", 1))
    forged_prev = "f" * 64
    rows[5] = replace(
        rows[5],
        record=forged,
        prev_hash=forged_prev,
        hash=chain_hash(forged_prev, SESSION, 5, forged),
    )
    report = check_chain(SESSION, rows, summary_of(rows))
    assert (report.ok, report.first_bad_seq) == (False, 5)
    assert report.message == (
        f"event 5 ({rows[5].record.type}) does not link to event 4: "
        "a row was removed, reordered or rewritten"
    )


def test_an_altered_row_is_found_with_both_hashes() -> None:
    rows = stored_rows()
    altered = replace(rows[3].record, payload=rows[3].record.payload + " ")
    rows[3] = replace(rows[3], record=altered)
    computed = chain_hash(rows[2].hash, SESSION, 3, altered)
    report = check_chain(SESSION, rows, summary_of(rows))
    assert (report.ok, report.first_bad_seq) == (False, 3)
    assert report.message == (
        f"event 3 ({altered.type}) was altered after it was stored: its content hashes to "
        f"{computed[:12]}…, the stored hash is {rows[3].hash[:12]}…"
    )


def test_a_missing_row_is_named() -> None:
    rows = stored_rows()
    del rows[4]
    report = check_chain(SESSION, rows, None)
    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert report.message == "event 4 is missing (next stored is 5)"


def test_rows_cut_off_the_end_are_counted_by_the_summary() -> None:
    rows = stored_rows()
    kept = rows[:-2]
    report = check_chain(SESSION, kept, summary_of(rows))
    assert (report.ok, report.first_bad_seq, report.events) == (False, len(kept), len(kept))
    assert report.message == (
        f"the session records {len(rows)} events but {len(kept)} are stored: "
        f"event {len(kept)} onwards is missing"
    )
    assert check_chain(SESSION, kept, None).ok  # without the summary, a prefix is a chain


def test_a_session_that_was_never_stored(tmp_path: Path) -> None:
    recorder = open_recorder(f"sqlite:///{tmp_path / 'k.sqlite'}", upgrade=True)
    report = recorder.verify_chain("0" * 32)
    assert (report.ok, report.first_bad_seq) == (False, None)
    assert report.message == f"no session {'0' * 32} is stored"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:secret@db/k", "postgresql://u:***@db/k"),
        ("not a url ://u:secret@host", "not a url ://***@host"),
        ("no url at all", "no url at all"),
        ("mysql://u:pw@db/k", "mysql://u:***@db/k"),
        # An unescaped "@" in the password: no part of it may show.
        ("postgresql://u:p@ss@db/k", "postgresql://***@db/k"),
    ],
)
def test_database_urls_never_show_a_password(url: str, shown: str) -> None:
    assert redact_database_url(url) == shown
    assert "secret" not in redact_database_url(parse_url("postgresql://u:secret@db/k"))


def test_url_forms() -> None:
    assert parse_url("postgres://u@db/k").drivername == "postgresql+psycopg"
    assert parse_url("sqlite:////tmp/k.sqlite").drivername == "sqlite"
    assert sqlite_path(parse_url("sqlite:////tmp/k.sqlite")) == Path("/tmp/k.sqlite")
    for memory in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:k?mode=memory&uri=true"):
        assert sqlite_path(parse_url(memory)) is None
