"""The sessions list: filters, order and paging over the summary table, in one query.

The store's `list_sessions` serves the CLI (newest first, a limit); the API also needs an
offset, a total, other orders, the "reviewed or not" filter (a session is reviewed once a
`ReviewDecided` event is in its stream) and each session's end time (when its
`SessionEnded` was stored: the summary's `updated_at` moves on with every later ruling).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, exists, func, select

from khfsm.domain.codes import EndStatus
from khfsm.domain.events import ReviewDecided, SessionEnded
from khfsm.domain.machine import State
from khfsm.errors import KhfsmError
from khfsm.store import schema
from khfsm.store.recorder import SessionRow
from khfsm.store.sql import as_utc, session_row

_sessions = schema.sessions
_events = schema.events

# sort key -> column; a leading "-" reverses it. Ties go by session id, so pages are stable.
SORTS = {
    "started_at": _sessions.c.created_at,
    "capture_id": _sessions.c.capture_id,
    "task": _sessions.c.task,
    "count": _sessions.c.count,
    "end_status": _sessions.c.end_status,
}
DEFAULT_SORT = "-started_at"


class FilterError(KhfsmError, ValueError):
    """A filter value the API cannot use; the message says what is accepted."""


@dataclass(frozen=True, slots=True)
class Filters:
    capture_id: int | None = None
    task: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    outcome: str | None = None  # a state, an end code ("-2") or its name ("time_up")
    candidate: str | None = None
    reviewed: bool | None = None


@dataclass(frozen=True, slots=True)
class Listed:
    row: SessionRow
    ended_at: datetime | None
    ruled: bool  # a reviewer has recorded a decision on it


def outcome_condition(outcome: str) -> Any:
    """`outcome` as a condition on the summary table."""
    text = outcome.strip().lower()
    states = {state.value for state in State if state is not State.IDLE}
    if text in states:
        return _sessions.c.state == text
    names = {status.name.lower(): status for status in EndStatus}
    if text in names:
        return _sessions.c.end_status == int(names[text])
    try:
        return _sessions.c.end_status == int(text)
    except ValueError:
        raise FilterError(
            f"outcome {outcome!r} is none of: a state ({', '.join(sorted(states))}), an end "
            f"code like -2, or an end name ({', '.join(names)})"
        ) from None


def list_sessions(
    engine: Engine, filters: Filters, *, sort: str, page: int, page_size: int
) -> tuple[list[Listed], int]:
    """One page of sessions (1-based) and how many match in all."""
    conditions = []
    if filters.capture_id is not None:
        conditions.append(_sessions.c.capture_id == filters.capture_id)
    if filters.task is not None:
        conditions.append(_sessions.c.task == filters.task)
    if filters.since is not None:
        conditions.append(_sessions.c.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(_sessions.c.created_at < filters.until)
    if filters.outcome is not None:
        conditions.append(outcome_condition(filters.outcome))
    if filters.candidate is not None:
        # The tablet protocol carries no candidate id: no stored session has one, so a
        # candidate filter matches nothing (rather than silently everything).
        conditions.append(_sessions.c.session_id.is_(None))
    ruled = exists().where(
        and_(
            _events.c.session_id == _sessions.c.session_id,
            _events.c.type == ReviewDecided.__name__,
        )
    )
    if filters.reviewed is not None:
        conditions.append(ruled if filters.reviewed else ~ruled)
    where = and_(True, *conditions)
    column = SORTS.get(sort.lstrip("-"))
    if column is None:
        raise FilterError(
            f"sort {sort!r} is none of {', '.join(SORTS)} (a leading - for descending)"
        )
    order = column.desc() if sort.startswith("-") else column.asc()
    ended_at = (
        select(func.max(_events.c.recorded_at))
        .where(_events.c.session_id == _sessions.c.session_id)
        .where(_events.c.type == SessionEnded.__name__)
        .scalar_subquery()
    )
    query = (
        select(_sessions, ended_at.label("ended_at"), ruled.label("ruled"))
        .where(where)
        .order_by(order, _sessions.c.session_id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    counted = select(func.count()).select_from(_sessions).where(where)
    with engine.connect() as connection:
        total = int(connection.execute(counted).scalar_one())
        rows = connection.execute(query).all()
    listed = [
        Listed(
            session_row(row),
            None if row.ended_at is None else as_utc(row.ended_at),
            bool(row.ruled),
        )
        for row in rows
    ]
    return listed, total
