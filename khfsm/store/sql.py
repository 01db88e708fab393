"""The recorder on SQLAlchemy Core, for SQLite and PostgreSQL alike.

Sequence numbers are kept unique and gap-free by the database itself: the summary row's
event count acts as an optimistic lock (an append must start exactly at it; a concurrent
writer blocks on the row and then finds the count moved on), and the (session_id, seq)
primary key rejects anything that slipped past. Driver errors never leave this module:
they become `SequenceConflict`, `StoreUnavailable` or `StoreError`, chained with `from`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Row, Select, bindparam, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from khfsm.domain.codec import GENESIS_HASH, CodecError, EventRecord, chain_hash, encode
from khfsm.domain.events import Event, SessionPrepared
from khfsm.domain.fold import SessionSummary, fold
from khfsm.store import schema
from khfsm.store.engine import WRITE, StoreTimeouts, create_store_engine
from khfsm.store.recorder import (
    EventRecorder,
    SequenceConflict,
    SessionRow,
    StoredEvent,
    StoredRecord,
    StoreError,
    StoreUnavailable,
)
from khfsm.store.urls import redact_database_url

_events = schema.events
_sessions = schema.sessions

# The statements of an append, built once. The writer appends a few times a second per lane,
# and building a statement anew each time (operators, coercions, then its cache key) cost
# more Python than executing it: measured with benchmarks/bench_store.py's session at 2
# frames per transaction, 1.33 ms per append before, 0.66 ms after. A statement built once
# keeps its cache key (SQLAlchemy memoises it on the object), so each append only binds
# values.
_SUMMARY_COLUMNS = ("state", "end_status", "count", "total", "frames", "events", "updated_at")
_INSERT_SESSION = insert(_sessions)
_INSERT_EVENTS = insert(_events)
_SESSION_BY_ID = select(_sessions).where(_sessions.c.session_id == bindparam("session_id"))
_ADVANCE_SUMMARY = (
    update(_sessions)
    .where(_sessions.c.session_id == bindparam("the_session_id"))
    .where(_sessions.c.events == bindparam("expected_events"))
    # bound under other names: SQLAlchemy reserves a column's own name for its SET value
    .values({name: bindparam("new_" + name) for name in _SUMMARY_COLUMNS})
)
_HASH_OF_EVENT = (
    select(_events.c.hash)
    .where(_events.c.session_id == bindparam("session_id"))
    .where(_events.c.seq == bindparam("seq"))
)


class SqlRecorder(EventRecorder):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._where = redact_database_url(engine.url)

    @property
    def engine(self) -> Engine:
        return self._engine

    # -- writing ----------------------------------------------------------------------------

    def append(self, session_id: str, first_seq: int, events: Sequence[Event]) -> list[StoredEvent]:
        if not events:
            return []
        _check_session_id(session_id)
        records = _encode_batch(session_id, first_seq, events)
        now = datetime.now(UTC)
        try:
            with self._writing() as connection:
                if first_seq == 0:
                    prepared = events[0]
                    assert isinstance(prepared, SessionPrepared)  # checked by _encode_batch
                    row = _new_session(session_id, prepared, now) | _columns(fold(events), now)
                    connection.execute(_INSERT_SESSION, [row])
                    previous = GENESIS_HASH
                else:
                    stored = self._stored_summary(connection, session_id)
                    if stored is None or stored.events != first_seq:
                        raise SequenceConflict(self._conflict(connection, session_id, first_seq))
                    # The stored count of events is the optimistic lock: a concurrent append
                    # that moved it on since the read above makes this update match no row.
                    summary = _columns(fold(events, stored), now)
                    moved = connection.execute(
                        _ADVANCE_SUMMARY,
                        {
                            "the_session_id": session_id,
                            "expected_events": first_seq,
                            **{"new_" + name: value for name, value in summary.items()},
                        },
                    )
                    if moved.rowcount != 1:
                        raise SequenceConflict(self._conflict(connection, session_id, first_seq))
                    previous = self._hash_before(connection, session_id, first_seq)
                rows = []
                for offset, record in enumerate(records):
                    seq = first_seq + offset
                    digest = chain_hash(previous, session_id, seq, record)
                    rows.append(_event_row(session_id, seq, record, digest, previous, now))
                    previous = digest
                connection.execute(_INSERT_EVENTS, rows)
        except IntegrityError as error:
            raise SequenceConflict(
                f"cannot append events {first_seq}..{first_seq + len(events) - 1} to session "
                f"{session_id}: {self._next_seq_text(session_id)}; nothing of the batch was "
                "stored"
            ) from error
        return [
            StoredEvent(
                session_id=session_id,
                seq=row["seq"],
                event=event,
                hash=row["hash"],
                prev_hash=row["prev_hash"],
                recorded_at=now,
            )
            for row, event in zip(rows, events, strict=True)
        ]

    def _conflict(self, connection: Any, session_id: str, first_seq: int) -> str:
        stored = connection.execute(
            select(_sessions.c.events).where(_sessions.c.session_id == session_id)
        ).scalar_one_or_none()
        if stored is None:
            return (
                f"session {session_id} is not stored: its first append must start at seq 0 "
                f"with SessionPrepared, not at {first_seq}"
            )
        kind = "a gap" if first_seq > stored else "a duplicate"
        return (
            f"cannot append at seq {first_seq} to session {session_id}: the next seq is "
            f"{stored}, so this would be {kind}; nothing of the batch was stored"
        )

    def _stored_summary(self, connection: Any, session_id: str) -> SessionSummary | None:
        row = connection.execute(_SESSION_BY_ID, {"session_id": session_id}).first()
        return None if row is None else session_row(row).summary()

    def _hash_before(self, connection: Any, session_id: str, seq: int) -> str:
        previous = connection.execute(
            _HASH_OF_EVENT, {"session_id": session_id, "seq": seq - 1}
        ).scalar_one_or_none()
        if previous is None:
            raise StoreError(
                f"session {session_id} has lost event {seq - 1} (its summary counts {seq}); "
                f"run `khfsm verify {session_id}`"
            )
        return str(previous)

    def _next_seq_text(self, session_id: str) -> str:
        try:
            row = self.session(session_id)
        except StoreError:
            return "the stored stream could not be read back"
        if row is None:
            return "the session is not stored"
        return f"the next seq is {row.events}"

    # -- reading ----------------------------------------------------------------------------

    def read_records(self, session_id: str, from_seq: int = 0) -> list[StoredRecord]:
        query = _records_query(session_id).where(_events.c.seq >= from_seq)
        return self._records(session_id, query)

    def read_records_of(self, session_id: str, types: Collection[str]) -> list[StoredRecord]:
        # Filtered in the database: a review reads a few dozen rows, not every frame's.
        query = _records_query(session_id).where(_events.c.type.in_(sorted(types)))
        return self._records(session_id, query)

    def _records(self, session_id: str, query: Select[Any]) -> list[StoredRecord]:
        with self._reading("read session " + session_id) as connection:
            result = connection.execute(query).all()
        return [
            StoredRecord(
                session_id=session_id,
                seq=seq,
                record=EventRecord(
                    type=kind,
                    version=version,
                    payload=payload,
                    blob=bytes(blob) if blob is not None else None,
                ),
                hash=digest,
                prev_hash=prev_hash,
                recorded_at=as_utc(recorded_at),
            )
            for seq, kind, version, payload, blob, digest, prev_hash, recorded_at in result
        ]

    def list_sessions(
        self,
        *,
        task: str | None = None,
        capture_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        state: str | None = None,
        end_status: int | None = None,
        limit: int | None = None,
    ) -> list[SessionRow]:
        query = select(_sessions).order_by(_sessions.c.created_at.desc(), _sessions.c.session_id)
        if task is not None:
            query = query.where(_sessions.c.task == task)
        if capture_id is not None:
            query = query.where(_sessions.c.capture_id == capture_id)
        if since is not None:
            query = query.where(_sessions.c.created_at >= as_utc(since))
        if until is not None:
            query = query.where(_sessions.c.created_at < as_utc(until))
        if state is not None:
            query = query.where(_sessions.c.state == state)
        if end_status is not None:
            query = query.where(_sessions.c.end_status == end_status)
        if limit is not None:
            query = query.limit(limit)
        with self._reading("list sessions") as connection:
            return [session_row(row) for row in connection.execute(query)]

    def session(self, session_id: str) -> SessionRow | None:
        query = select(_sessions).where(_sessions.c.session_id == session_id)
        with self._reading("read session " + session_id) as connection:
            row = connection.execute(query).first()
        return None if row is None else session_row(row)

    def session_ids_starting_with(self, prefix: str, limit: int = 10) -> list[str]:
        """Up to `limit` stored session ids that begin with `prefix`, in order (how the CLI
        takes an id prefix, as git takes a commit's)."""
        query = (
            select(_sessions.c.session_id)
            .where(_sessions.c.session_id.startswith(prefix, autoescape=True))
            .order_by(_sessions.c.session_id)
            .limit(limit)
        )
        with self._reading("look up session ids") as connection:
            found = [str(row[0]) for row in connection.execute(query)]
        # SQLite's LIKE ignores case: a prefix matches exactly on every backend.
        return [session_id for session_id in found if session_id.startswith(prefix)]

    def count_sessions(self) -> int:
        with self._reading("count sessions") as connection:
            return int(connection.execute(select(func.count()).select_from(_sessions)).scalar_one())

    def close(self) -> None:
        self._engine.dispose()

    # -- connections and error translation ----------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[Any]:
        with (
            self._translated("write to"),
            self._engine.connect().execution_options(**{WRITE: True}) as connection,
            connection.begin(),
        ):
            yield connection

    @contextmanager
    def _reading(self, action: str) -> Iterator[Any]:
        with self._translated(action), self._engine.connect() as connection:
            yield connection

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except IntegrityError:
            raise  # a sequence conflict: the caller words it
        except (OperationalError, InterfaceError) as error:
            raise StoreUnavailable(
                f"cannot {action} the event store at {self._where}: {_reason(error)}"
            ) from error
        except DBAPIError as error:
            if error.connection_invalidated:
                raise StoreUnavailable(
                    f"lost the connection to the event store at {self._where}: {_reason(error)}"
                ) from error
            raise StoreError(
                f"the event store at {self._where} failed to {action}: {_reason(error)}"
            ) from error


def open_recorder(
    url: str,
    *,
    upgrade: bool = False,
    busy_timeout_ms: int | None = None,
    timeouts: StoreTimeouts | None = None,
) -> SqlRecorder:
    """A recorder on the database at `url`, checked to be reachable and at the schema head.

    With `upgrade`, migrations are applied first (the server does this for SQLite);
    otherwise an out-of-date schema is an error that says to run `khfsm db upgrade`.
    """
    from khfsm.store import migrate  # Alembic is only needed here, not on every import

    if upgrade:
        migrate.upgrade(url)
    engine = create_store_engine(url, busy_timeout_ms=busy_timeout_ms, timeouts=timeouts)
    where = redact_database_url(engine.url)
    try:
        revision = migrate.current_of(engine)
    except DBAPIError as error:
        engine.dispose()
        raise StoreUnavailable(
            f"cannot reach the event store at {where}: {_reason(error)}; check that the "
            "database is running and that KHFSM_DATABASE_URL (or --database-url) is right"
        ) from error
    head = migrate.head()
    if revision != head:
        engine.dispose()
        if revision is None:
            raise StoreError(f"the event store at {where} has no tables; run `khfsm db upgrade`")
        raise StoreError(
            f"the event store at {where} is at schema revision {revision}, this khfsm "
            f"expects {head}; run `khfsm db upgrade` (or upgrade khfsm if its revision is newer)"
        )
    return SqlRecorder(engine)


# -- rows ------------------------------------------------------------------------------------


def _records_query(session_id: str) -> Select[Any]:
    return (
        select(
            _events.c.seq,
            _events.c.type,
            _events.c.version,
            _events.c.payload,
            _events.c.blob,
            _events.c.hash,
            _events.c.prev_hash,
            _events.c.recorded_at,
        )
        .where(_events.c.session_id == session_id)
        .order_by(_events.c.seq)
    )


def _check_session_id(session_id: str) -> None:
    if not session_id or len(session_id) > schema.SESSION_ID_LENGTH:
        raise StoreError(
            f"session id {session_id!r} must be 1 to {schema.SESSION_ID_LENGTH} characters"
        )


def _encode_batch(session_id: str, first_seq: int, events: Sequence[Event]) -> list[EventRecord]:
    if first_seq < 0:
        raise SequenceConflict(f"sequence numbers start at 0, not {first_seq}")
    records = []
    for offset, event in enumerate(events):
        seq = first_seq + offset
        if isinstance(event, SessionPrepared) != (seq == 0):
            raise StoreError(
                f"session {session_id}: event 0 and only event 0 must be SessionPrepared, "
                f"got {type(event).__name__} at seq {seq}"
            )
        try:
            records.append(encode(event))
        except CodecError as error:
            raise StoreError(f"event {seq} of session {session_id}: {error}") from error
    return records


def _new_session(session_id: str, prepared: SessionPrepared, now: datetime) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "task": prepared.task,
        "capture_id": prepared.capture_id,
        "level": prepared.level,
        "fps": prepared.fps,
        "rules_version": prepared.rules_version,
        "created_at": now,
    }


def _columns(summary: SessionSummary, now: datetime) -> dict[str, Any]:
    """The summary columns of a session (`_SUMMARY_COLUMNS`): the scalar fields of its
    evolved summary."""
    return {
        "state": summary.state.value,
        "end_status": summary.end_status,
        "count": summary.count,
        "total": summary.total,
        "frames": summary.frames,
        "events": summary.events,
        "updated_at": now,
    }


def _event_row(
    session_id: str, seq: int, record: EventRecord, digest: str, previous: str, now: datetime
) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "seq": seq,
        "type": record.type,
        "version": record.version,
        "payload": record.payload,
        "blob": record.blob,
        "hash": digest,
        "prev_hash": previous,
        "recorded_at": now,
    }


def session_row(row: Row[Any]) -> SessionRow:
    """A row of the sessions table (extra columns are ignored) as a `SessionRow`."""
    values = row._mapping
    return SessionRow(
        session_id=values["session_id"],
        task=values["task"],
        capture_id=values["capture_id"],
        level=values["level"],
        rules_version=values["rules_version"],
        created_at=as_utc(values["created_at"]),
        updated_at=as_utc(values["updated_at"]),
        state=values["state"],
        end_status=values["end_status"],
        count=values["count"],
        total=values["total"],
        frames=values["frames"],
        events=values["events"],
    )


def as_utc(moment: datetime) -> datetime:
    # SQLite keeps no time zone: everything is stored in UTC and read back as such.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _reason(error: DBAPIError) -> str:
    original = error.orig if error.orig is not None else error
    text = str(original).strip()
    return text.splitlines()[0] if text else type(original).__name__
