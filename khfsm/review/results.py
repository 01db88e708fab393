"""An exam day's results, one row per session, for the exam's records system (CSV or JSON).

Each row holds the machine's result and the reviewed one side by side, and a link to the
evidence (the review page of the session: `Settings.evidence_url`, a template filled with
`public_url` and the session id). The day is a calendar date in the server's local time
zone unless a zone is given: an exam day is what the proctors call one.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from khfsm.domain.fold import end_message
from khfsm.review.decisions import review_of
from khfsm.store.recorder import EventRecorder, SessionRow

DEFAULT_EVIDENCE_URL = "{public_url}/ui/sessions/{session_id}"


@dataclass(frozen=True, slots=True)
class ResultRow:
    candidate: str | None  # the examinee's id, when the tablet gave one
    task: str
    level: int
    count: int  # the machine's
    total: int
    end_status: int | None
    end_message: str
    reviewed: bool  # whether any reviewer ruled on the session
    reviewed_count: int
    reviewed_total: int
    verdict: str  # the board's ruling on the ending: "not reviewed", "upheld", "overturned"
    reviewed_result: str  # in words: "not reviewed", "upheld 12/15", "11/15 (rep 3 overturned)"
    session_id: str
    capture_id: int
    started_at: str  # ISO 8601, UTC
    evidence: str  # link to the session's evidence

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS = tuple(ResultRow.__dataclass_fields__)


def evidence_link(session_id: str, public_url: str | None, template: str | None = None) -> str:
    base = (public_url or "").rstrip("/")
    return (template or DEFAULT_EVIDENCE_URL).format(public_url=base, session_id=session_id)


def day_bounds(day: date, zone: tzinfo | None = None) -> tuple[datetime, datetime]:
    """The start of `day` and of the next one, in `zone` (default: the local time zone)."""
    start = datetime.combine(day, time(0))
    start = start.replace(tzinfo=zone) if zone is not None else start.astimezone()
    end = datetime.combine(day + timedelta(days=1), time(0))
    end = end.replace(tzinfo=zone) if zone is not None else end.astimezone()
    return start, end


def result_row(
    recorder: EventRecorder,
    row: SessionRow,
    *,
    public_url: str | None = None,
    evidence_url: str | None = None,
) -> ResultRow:
    """One session's result row (reads its review-relevant events, not its frames)."""
    review = review_of(recorder, row.session_id)
    result = review.result
    prepared = review.summary.prepared
    ended = review.summary.end
    # The tablet protocol carries no candidate id yet: a field of that name on the prepare
    # (a later schema of `SessionPrepared`) is reported when there is one.
    candidate = getattr(prepared, "candidate", None) or None
    return ResultRow(
        candidate=None if candidate is None else str(candidate),
        task=row.task,
        level=row.level,
        count=row.count,
        total=row.total,
        end_status=row.end_status,
        end_message=(
            ended.message
            if ended is not None
            else ("" if row.end_status is None else end_message(row.end_status))
        ),
        reviewed=result.reviewed,
        reviewed_count=result.count,
        reviewed_total=result.total,
        verdict=result.verdict.value,
        reviewed_result=result.describe(),
        session_id=row.session_id,
        capture_id=row.capture_id,
        started_at=row.created_at.isoformat(),
        evidence=evidence_link(row.session_id, public_url, evidence_url),
    )


def day_results(
    recorder: EventRecorder,
    day: date,
    *,
    zone: tzinfo | None = None,
    public_url: str | None = None,
    evidence_url: str | None = None,
    ended_only: bool = True,
) -> list[ResultRow]:
    """Every session prepared on `day`, in the order they were prepared. Sessions still
    running are left out unless `ended_only` is false (a result is final once ended)."""
    since, until = day_bounds(day, zone)
    rows = recorder.list_sessions(since=since, until=until)
    rows.sort(key=lambda row: (row.created_at, row.session_id))
    return [
        result_row(recorder, row, public_url=public_url, evidence_url=evidence_url)
        for row in rows
        if row.end_status is not None or not ended_only
    ]


def to_csv(rows: list[ResultRow]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.as_dict())
    return buffer.getvalue()


def to_json(rows: list[ResultRow]) -> str:
    return json.dumps([row.as_dict() for row in rows], indent=2, ensure_ascii=False)
