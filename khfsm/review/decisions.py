"""Recording a reviewer's ruling, and reading a session's review state from the store.

`record_decision` appends a `ReviewDecided` event to an ended session's stream directly
through the recorder (the API runs in the server process, beside the event writer). That is
safe against the writer: the writer only appends to sessions that are still open, and a
session's `SessionEnded` is its last write (it is flushed before the final push), so once
the store holds the end no lane writes to that stream again. Two rulings made at the same
moment are ordered by the store's optimistic lock (`SequenceConflict`): the loser re-reads
the stream and appends after the winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from khfsm.domain.events import (
    FaceChecked,
    MotionViolated,
    RepCounted,
    ReviewDecided,
    SessionEnded,
    SessionPrepared,
)
from khfsm.domain.fold import SessionSummary, fold
from khfsm.domain.review import DecisionRefused, ReviewedResult, decide, reviewed_result
from khfsm.errors import KhfsmError
from khfsm.store.recorder import (
    EventRecorder,
    SequenceConflict,
    StoredEvent,
    StoreError,
    decode_rows,
)

# What a review needs of a stream: everything but the frames (a 2-minute session's 2440
# `FrameObserved` rows are the bulk of it, and no ruling reads them).
REVIEW_TYPES = tuple(
    cls.__name__
    for cls in (
        SessionPrepared,
        RepCounted,
        MotionViolated,
        FaceChecked,
        SessionEnded,
        ReviewDecided,
    )
)
_APPEND_ATTEMPTS = 5

__all__ = [
    "REVIEW_TYPES",
    "DecisionRefused",
    "Review",
    "SessionNotFound",
    "decision_dict",
    "record_decision",
    "review_of",
    "review_summary",
]


class SessionNotFound(KhfsmError, LookupError):
    """No session with that id is stored."""


@dataclass(frozen=True, slots=True)
class Review:
    """A session's rulings and its reviewed result, as the store holds them now."""

    session_id: str
    summary: SessionSummary  # a fold of `REVIEW_TYPES` only: no per-frame fields (`persons`)
    decisions: tuple[StoredEvent, ...]  # every `ReviewDecided`, with its seq and hash
    result: ReviewedResult


def review_summary(recorder: EventRecorder, session_id: str) -> tuple[SessionSummary, int]:
    """The fold of a session's review-relevant events, and the session's next seq.

    `SessionNotFound` when no such session is stored."""
    stored, next_seq = _review_events(recorder, session_id)
    return fold(event.event for event in stored), next_seq


def review_of(recorder: EventRecorder, session_id: str) -> Review:
    """The rulings on a session and its reviewed result."""
    stored, _ = _review_events(recorder, session_id)
    summary = fold(event.event for event in stored)
    return Review(
        session_id=session_id,
        summary=summary,
        decisions=tuple(s for s in stored if isinstance(s.event, ReviewDecided)),
        result=reviewed_result(summary),
    )


def record_decision(
    recorder: EventRecorder,
    session_id: str,
    reviewer: str,
    target: object,
    decision: str,
    reason: str,
    at: str | None = None,
) -> StoredEvent:
    """Append a reviewer's ruling to an ended session; the stored event (seq, hash).

    `target` is a repetition's 1-based number or "verdict"; `decision` "uphold" or
    "overturn"; `at` an ISO 8601 time (default: now, UTC). Raises `SessionNotFound`,
    `DecisionRefused` (running session, no such repetition, no reason, ...) or the store's
    `StoreError`/`StoreUnavailable`.
    """
    moment = at if at is not None else datetime.now(UTC).isoformat(timespec="milliseconds")
    for _ in range(_APPEND_ATTEMPTS):
        summary, next_seq = review_summary(recorder, session_id)
        ruling = decide(
            summary, reviewer=reviewer, target=target, decision=decision, reason=reason, at=moment
        )
        try:
            (stored,) = recorder.append(session_id, next_seq, [ruling])
        except SequenceConflict:
            continue  # another ruling landed first: append after it
        return stored
    raise StoreError(
        f"could not append the ruling to session {session_id}: the stream kept moving on "
        f"({_APPEND_ATTEMPTS} attempts); try again"
    )


def decision_dict(stored: StoredEvent) -> dict[str, Any]:
    """A stored ruling as the API shows it: seq, reviewer, at, target, decision, reason."""
    ruling = stored.event
    assert isinstance(ruling, ReviewDecided)
    return {
        "seq": stored.seq,
        "reviewer": ruling.reviewer,
        "at": ruling.at,
        "target": ruling.target,
        "decision": ruling.decision,
        "reason": ruling.reason,
        "hash": stored.hash,
    }


def _review_events(recorder: EventRecorder, session_id: str) -> tuple[list[StoredEvent], int]:
    # The summary row first: its event count is the next seq, read before the events so that
    # an append racing this read makes our own append conflict (and retry), never skip.
    row = recorder.session(session_id)
    if row is None:
        raise SessionNotFound(f"no session {session_id} is stored")
    rows = recorder.read_records_of(session_id, REVIEW_TYPES)
    return decode_rows(session_id, rows), row.events
