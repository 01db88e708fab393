"""The audit log: who read which session's evidence, and who decided what, when.

Every API access to a session's evidence (its detail, events, keypoints, video, bundle,
verify) and every decision appends one row. Rows are only ever added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select

from khfsm.api.writes import writing
from khfsm.store import schema

_audit = schema.audit_log


@dataclass(frozen=True, slots=True)
class AuditEntry:
    entry_id: int
    at: datetime
    user: str
    action: str
    session_id: str | None
    detail: str


class AuditLog:
    """Blocking: call from a worker thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, user: str, action: str, session_id: str | None, detail: str = "") -> None:
        row = {
            "at": datetime.now(UTC),
            "user_name": user,
            "action": action,
            "session_id": session_id,
            "detail": detail,
        }
        with writing(self._engine) as connection:
            connection.execute(insert(_audit), [row])

    def entries(
        self,
        *,
        user: str | None = None,
        session_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first."""
        query = select(_audit).order_by(_audit.c.entry_id.desc()).limit(limit)
        if user is not None:
            query = query.where(_audit.c.user_name == user)
        if session_id is not None:
            query = query.where(_audit.c.session_id == session_id)
        if since is not None:
            query = query.where(_audit.c.at >= since)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            AuditEntry(
                entry_id=row.entry_id,
                at=row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC),
                user=row.user_name,
                action=row.action,
                session_id=row.session_id,
                detail=row.detail,
            )
            for row in rows
        ]
