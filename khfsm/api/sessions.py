"""Sessions and their evidence: the list, one session, its events, keypoints, video, verify.

Handlers are plain functions: FastAPI runs them in its thread pool, so the store's blocking
reads never hold up the event loop the lanes run on. Every read of a session's evidence is
written to the audit log.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse

from khfsm.api import API_PREFIX
from khfsm.api.auth import Operator
from khfsm.api.deps import AuditDep, recorder_of, site_of
from khfsm.api.listing import DEFAULT_SORT, FilterError, Filters, list_sessions
from khfsm.api.stream import event_page, keypoints
from khfsm.api.views import DETAIL_TYPES, session_detail, session_row
from khfsm.domain.events import SessionEnded, SessionPrepared
from khfsm.store.recorder import StoredEvent, StoredRecord, StoreError, decode_rows
from khfsm.store.sql import SqlRecorder

router = APIRouter(prefix=API_PREFIX, tags=["sessions"])
Recorder = Annotated[SqlRecorder, Depends(recorder_of)]
MAX_PAGE_SIZE = 500


def json_response(body: Any) -> Response:
    # orjson, directly: FastAPI's own encoder walks every value in Python, which takes a
    # second for a 2-minute session's keypoints; orjson writes numpy arrays natively.
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
    )


@router.get("/sessions")
def sessions(
    _user: Operator,
    recorder: Recorder,
    lane: Annotated[int | None, Query(description="The lane (CaptureID).")] = None,
    task: Annotated[str | None, Query(description="pushup, situp, ..., FaceDetection")] = None,
    date_from: Annotated[
        str | None, Query(description="Prepared at or after (ISO date or date-time).")
    ] = None,
    date_to: Annotated[
        str | None, Query(description="Prepared before, or on this day if a date.")
    ] = None,
    outcome: Annotated[
        str | None,
        Query(description="A state (running, stopped, ...), an end code (-2) or name (time_up)."),
    ] = None,
    candidate: Annotated[
        str | None, Query(description="The examinee's id (the tablets send none yet).")
    ] = None,
    reviewed: Annotated[bool | None, Query(description="Ruled on by a reviewer or not.")] = None,
    sort: Annotated[
        str, Query(description="started_at, capture_id, task, count, end_status; -x descends.")
    ] = DEFAULT_SORT,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> Response:
    """Stored sessions matching every filter given, a page at a time."""
    from khfsm.review.decisions import review_of

    filters = Filters(
        capture_id=lane,
        task=task,
        since=_moment(date_from, "date_from", end_of_day=False),
        until=_moment(date_to, "date_to", end_of_day=True),
        outcome=outcome,
        candidate=candidate,
        reviewed=reviewed,
    )
    try:
        listed, total = list_sessions(
            recorder.engine, filters, sort=sort, page=page, page_size=page_size
        )
    except FilterError as error:
        raise HTTPException(422, str(error)) from error
    # Only a session with decisions needs its stream read for the reviewed result.
    items = [
        session_row(
            item.row,
            item.ended_at,
            review_of(recorder, item.row.session_id).result if item.ruled else None,
        )
        for item in listed
    ]
    return json_response({"items": items, "page": page, "page_size": page_size, "total": total})


@router.get("/sessions/{session_id}")
def session(session_id: str, user: Operator, recorder: Recorder, audit: AuditDep) -> Response:
    """One session: summary, versions, camera view, readiness, repetitions, end, rulings."""
    from khfsm.registry import UnknownTask, get_task

    row = recorder.session(session_id)
    if row is None:
        raise _not_found(session_id)
    stored = _decoded(session_id, recorder.read_records_of(session_id, DETAIL_TYPES))
    prepared = _prepared(session_id, stored)
    try:
        faults = get_task(prepared.task, prepared.rules_version).faults
    except UnknownTask:
        faults = {}
    ended = next((s for s in stored if isinstance(s.event, SessionEnded)), None)
    base = f"{API_PREFIX}/sessions/{session_id}"
    audit.record(user.name, "read session", session_id)
    return json_response(
        session_detail(
            row,
            None if ended is None else ended.recorded_at,
            stored,
            faults=faults,
            video_url=f"{base}/video" if prepared.video_path else None,
            bundle_url=f"{base}/bundle",
        )
    )


@router.get("/sessions/{session_id}/events")
def events(
    session_id: str,
    user: Operator,
    recorder: Recorder,
    audit: AuditDep,
    after: Annotated[int, Query(ge=-1, description="Events after this seq.")] = -1,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Response:
    """The session's events in order, a page at a time: `next` is the `after` of the next."""
    if recorder.session(session_id) is None:
        raise _not_found(session_id)
    page = event_page(recorder.engine, session_id, after, limit)
    audit.record(user.name, "read events", session_id, f"after {after}, limit {limit}")
    return json_response({"items": page.items, "next": page.next})


@router.get("/sessions/{session_id}/keypoints")
def session_keypoints(
    session_id: str, user: Operator, recorder: Recorder, audit: AuditDep
) -> Response:
    """Every frame's 33 landmarks as [x, y, visibility] (normalized), for drawing."""
    stored = _decoded(session_id, recorder.read_records_of(session_id, [SessionPrepared.__name__]))
    prepared = _prepared(session_id, stored)
    body = keypoints(recorder.engine, session_id, prepared)
    audit.record(user.name, "read keypoints", session_id)
    return json_response(body)


@router.get(
    "/sessions/{session_id}/video",
    response_class=FileResponse,
    responses={206: {"description": "The requested byte range"}, 416: {}},
)
def video(
    session_id: str, request: Request, user: Operator, recorder: Recorder, audit: AuditDep
) -> FileResponse:
    """The evidence video (MP4), with HTTP Range requests for seeking."""
    from khfsm.review.bundle import video_file

    stored = _decoded(session_id, recorder.read_records_of(session_id, [SessionPrepared.__name__]))
    prepared = _prepared(session_id, stored)
    path, why = video_file(site_of(request).media.root, prepared.video_path)
    if path is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"session {session_id} has no recorded video on this server: {why}",
        )
    audit.record(user.name, "read video", session_id, request.headers.get("range", "whole"))
    return FileResponse(
        path,
        media_type="video/mp4",
        filename=f"{session_id}.mp4",
        content_disposition_type="inline",
    )


@router.get("/sessions/{session_id}/verify")
def verify(session_id: str, user: Operator, recorder: Recorder, audit: AuditDep) -> Response:
    """The hash chain and a replay under the rules the session was judged by."""
    from khfsm.review.verify import verify_session

    if recorder.session(session_id) is None:
        raise _not_found(session_id)
    report = verify_session(recorder, session_id)
    audit.record(user.name, "verify", session_id, "intact" if report["intact"] else "NOT intact")
    return json_response(report)


# -- helpers ---------------------------------------------------------------------------------


def _not_found(session_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no session {session_id} is stored")


def _decoded(session_id: str, rows: list[StoredRecord]) -> list[StoredEvent]:
    try:
        return decode_rows(session_id, rows)
    except StoreError as error:
        raise StoreError(f"{error}; GET .../verify says more") from error


def _prepared(session_id: str, stored: list[StoredEvent]) -> SessionPrepared:
    if not stored or not isinstance(stored[0].event, SessionPrepared):
        raise _not_found(session_id)
    return stored[0].event


def _moment(text: str | None, name: str, *, end_of_day: bool) -> datetime | None:
    """An ISO date or date-time; without a zone it is the server's local time. A bare date
    as an upper bound means the end of that day."""
    if text is None or not text.strip():
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        moment = datetime.combine(day + timedelta(days=1 if end_of_day else 0), time(0))
        return moment.astimezone().astimezone(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise HTTPException(
            422,
            f"{name} {text!r} is not a date or date-time like 2026-03-01 or 2026-03-01T14:30",
        ) from None
    return (moment if moment.tzinfo else moment.astimezone()).astimezone(UTC)
