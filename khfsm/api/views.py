"""What the API shows of a session, built from its stored events (pure: no I/O here).

A listing row comes from the summary table; one session's detail from a fold of its events
without the frames (`DETAIL_TYPES`), so opening a 2-minute session reads a few dozen rows
rather than its 2440 frames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from khfsm.domain.codes import EndStatus
from khfsm.domain.events import (
    FaceChecked,
    MotionViolated,
    ReadinessReported,
    RepCounted,
    ReviewDecided,
    SessionEnded,
    SessionPrepared,
    SessionStarted,
    SourceFailed,
    StopRequested,
)
from khfsm.domain.fold import SessionSummary, end_message, fold
from khfsm.domain.review import ReviewedResult, reviewed_result
from khfsm.store.recorder import SessionRow, StoredEvent

# Every event type but the frames (and the examinee tracking that accompanies them).
DETAIL_TYPES = tuple(
    cls.__name__
    for cls in (
        SessionPrepared,
        SessionStarted,
        ReadinessReported,
        RepCounted,
        StopRequested,
        SourceFailed,
        MotionViolated,
        FaceChecked,
        SessionEnded,
        ReviewDecided,
    )
)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def session_row(
    row: SessionRow, ended_at: datetime | None, result: ReviewedResult | None
) -> dict[str, Any]:
    """A listing row (`SessionRow` of the API contract)."""
    return {
        "id": row.session_id,
        "task": row.task,
        "rules_version": row.rules_version,
        "capture_id": row.capture_id,
        # The tablet protocol carries no candidate id; kept so that clients need no change
        # when it does.
        "candidate": None,
        "started_at": iso(row.created_at),
        "ended_at": iso(ended_at),
        "state": row.state,
        "end_status": row.end_status,
        "end_message": None if row.end_status is None else end_message(row.end_status),
        "count": row.count,
        "total": row.total,
        "reviewed": result is not None and result.reviewed,
        "reviewed_count": row.count if result is None else result.count,
        "reviewed_total": row.total if result is None else result.total,
    }


def session_detail(
    row: SessionRow,
    ended_at: datetime | None,
    stored: Sequence[StoredEvent],
    *,
    faults: Mapping[int, str],
    video_url: str | None,
    bundle_url: str,
) -> dict[str, Any]:
    """One session: its row plus everything a reviewer reads (the frames excepted).
    `faults`: the task's fault codes in words."""
    events = [item.event for item in stored]
    summary = fold(events)
    result = reviewed_result(summary)
    detail = session_row(row, ended_at, result)
    prepared = summary.prepared
    readiness = [event for event in events if isinstance(event, ReadinessReported)]
    fps = row_fps(prepared)
    detail.update(
        {
            "level": row.level,
            "fps": fps,
            "duration": None if prepared is None or not fps else prepared.frames / fps,
            "frames_planned": None if prepared is None else prepared.frames,
            "frame_width": None if prepared is None else prepared.frame_width,
            "frame_height": None if prepared is None else prepared.frame_height,
            "model_versions": _models(prepared),
            "camera_view": readiness[-1].view if readiness else None,
            "readiness": [_readiness(event) for event in readiness],
            "repetitions": [_repetition(rep, result, faults) for rep in summary.reps],
            "violation": _violation(summary.violation),
            "stop_frame": summary.stop_frame,
            "face": _face(summary.face),
            "end": _end(summary),
            "review": _review(result),
            "decisions": [
                _decision(item) for item in stored if isinstance(item.event, ReviewDecided)
            ],
            "video_url": video_url,
            "bundle_url": bundle_url,
        }
    )
    return detail


def row_fps(prepared: SessionPrepared | None) -> float | None:
    return None if prepared is None else prepared.fps


def _models(prepared: SessionPrepared | None) -> dict[str, Any]:
    if prepared is None:
        return {}
    return {
        "engine": prepared.engine_version,
        "rules": prepared.rules_version,
        "models": dict(prepared.models),  # model file -> sha256
    }


def _readiness(event: ReadinessReported) -> dict[str, Any]:
    return {
        "moment": event.moment,
        "person": event.person,
        "out_of_view": list(event.out_of_view),
        "in_position": event.in_position,
        "missing": list(event.missing),
        "view": event.view,
    }


def _repetition(
    rep: RepCounted, result: ReviewedResult, faults: Mapping[int, str]
) -> dict[str, Any]:
    codes = [code for code in rep.status if code != 0]
    reviewed_valid = result.valid[rep.rep - 1] if 0 < rep.rep <= len(result.valid) else None
    return {
        "index": rep.rep,
        "status": list(rep.status),
        "valid": rep.valid,
        "fault_code": codes[0] if codes else None,
        "fault_codes": codes,
        "message": _rep_message(rep, faults),
        "start_frame": rep.start_frame,
        "end_frame": rep.end_frame,
        "start_time": rep.time[0],
        "end_time": rep.time[1],
        "count": rep.count,
        "total": rep.total,
        "measurements": dict(rep.measurements),
        "reviewed_valid": reviewed_valid,
        "overturned": rep.rep in result.overturned,
    }


def _rep_message(rep: RepCounted, faults: Mapping[int, str]) -> str:
    if rep.valid:
        return "valid repetition"
    return "; ".join(faults.get(code, f"fault {code}") for code in rep.status if code != 0)


def _violation(event: MotionViolated | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {
        "frame": event.frame,
        "code": event.code,
        "message": event.message,
        "measurements": dict(event.measurements),
    }


def _face(event: FaceChecked | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {
        "similarity": event.similarity,
        "accepted": event.accepted,
        "threshold": event.threshold,
        "filename": event.filename,
        "message": event.message,
    }


def _end(summary: SessionSummary) -> dict[str, Any] | None:
    end = summary.end
    if end is None:
        return None
    return {
        "status": end.status,
        "name": _end_name(end.status),
        "message": end.message,
        "frames": end.frames,
        "count": end.count,
        "total": end.total,
        "video_sha256": end.video_sha256,
        "video_bytes": end.video_bytes,
    }


def _end_name(status: int) -> str | None:
    try:
        return EndStatus(status).name.lower()
    except ValueError:
        return None


def _review(result: ReviewedResult) -> dict[str, Any]:
    """The board's result beside the machine's."""
    return {
        "machine": {"count": result.machine_count, "total": result.machine_total},
        "reviewed": {"count": result.count, "total": result.total},
        "verdict": result.verdict.value,
        "verdict_reason": result.verdict_reason,
        "overturned": list(result.overturned),
        "decisions": result.decisions,
        "summary": result.describe(),
    }


def _decision(item: StoredEvent) -> dict[str, Any]:
    from khfsm.review.decisions import decision_dict

    return decision_dict(item)


def event_item(seq: int, kind: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One stored event as the events endpoint lists it: its fields, then seq and type."""
    return {**payload, **extra, "seq": seq, "type": kind}
