"""The dispute file and the board's part: the evidence bundle, reviewers' decisions, and an
exam day's results. The work is `khfsm.review`'s; this module is its HTTP face."""

from __future__ import annotations

import os
import tempfile
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from khfsm.api import API_PREFIX
from khfsm.api.auth import Operator, Reviewer
from khfsm.api.deps import AuditDep, site_of
from khfsm.api.sessions import Recorder, json_response

router = APIRouter(prefix=API_PREFIX, tags=["review"])


class DecisionIn(BaseModel):
    target: int | str = Field(description='A repetition\'s 1-based number, or "verdict".')
    decision: str = Field(description='"uphold" or "overturn".')
    reason: str = Field(description="Why, in the reviewer's words.", max_length=2000)


class ResultFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


@router.get(
    "/sessions/{session_id}/bundle",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
def bundle(
    session_id: str, request: Request, user: Operator, recorder: Recorder, audit: AuditDep
) -> FileResponse:
    """The evidence bundle (zip): events, video, verify report and a manifest of hashes;
    `khfsm bundle verify FILE.zip` checks it without the server."""
    from khfsm.review.bundle import write_bundle
    from khfsm.review.decisions import SessionNotFound

    descriptor, name = tempfile.mkstemp(prefix=f"khfsm-bundle-{session_id[:16]}-", suffix=".zip")
    os.close(descriptor)
    try:
        write_bundle(recorder, site_of(request).media.root, session_id, name)
    except SessionNotFound as error:
        os.unlink(name)
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
    except BaseException:
        os.unlink(name)
        raise
    audit.record(user.name, "export bundle", session_id)
    return FileResponse(
        name,
        media_type="application/zip",
        filename=f"khfsm-{session_id}.zip",
        background=BackgroundTask(os.unlink, name),
    )


@router.post("/sessions/{session_id}/decisions", status_code=status.HTTP_201_CREATED)
def decide(
    session_id: str, ruling: DecisionIn, user: Reviewer, recorder: Recorder, audit: AuditDep
) -> dict[str, Any]:
    """Uphold or overturn one repetition or the verdict, with a reason; appended to the
    session's events (hash-chained) and to the audit log."""
    from khfsm.review.decisions import (
        DecisionRefused,
        SessionNotFound,
        decision_dict,
        record_decision,
    )

    try:
        stored = record_decision(
            recorder, session_id, user.name, ruling.target, ruling.decision, ruling.reason
        )
    except SessionNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
    except DecisionRefused as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    audit.record(
        user.name,
        "decide",
        session_id,
        f"{ruling.decision} {ruling.target} (event {stored.seq}): {ruling.reason}",
    )
    return decision_dict(stored)


@router.get("/results", responses={200: {"content": {"text/csv": {}}}})
def results(
    request: Request,
    user: Operator,
    recorder: Recorder,
    audit: AuditDep,
    day: Annotated[date, Query(alias="date", description="The exam day, YYYY-MM-DD (local).")],
    format: Annotated[ResultFormat, Query()] = ResultFormat.JSON,
) -> Response:
    """Every ended session of an exam day, one row each: the machine's and the reviewed
    result side by side, and a link to the evidence; for the exam's records system."""
    from khfsm.review import results as exports

    settings = site_of(request).settings
    public_url = settings.public_url or str(request.base_url).rstrip("/")
    rows = exports.day_results(
        recorder,
        day,
        public_url=public_url,
        evidence_url=settings.evidence_url,
    )
    audit.record(user.name, "results", None, f"{day.isoformat()} {format.value}, {len(rows)} rows")
    if format is ResultFormat.CSV:
        return Response(
            exports.to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="results-{day}.csv"'},
        )
    return json_response([row.as_dict() for row in rows])
