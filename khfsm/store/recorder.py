"""The recorder interface: what the engine asks of an event store, whatever the backend.

Modelled on pyeventsourcing's recorders: a small interface (append a batch, read a stream,
list sessions), one implementation per backend (`khfsm.store.sql`), driver errors translated
into the errors below at that boundary. The domain imports none of this.

A session's stream is numbered from 0 without gaps; each stored event carries a SHA-256 hash
chained to the previous event of its session (`khfsm.domain.codec.chain_hash`), which the
recorder computes on append, so a stream edited behind the engine's back fails
`verify_chain` at the first row touched.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from khfsm.domain.codec import GENESIS_HASH, CodecError, EventRecord, chain_hash, decode
from khfsm.domain.events import Event
from khfsm.domain.fold import SessionSummary
from khfsm.domain.machine import State
from khfsm.errors import KhfsmError


class StoreError(KhfsmError):
    """The event store refused or failed an operation; the message says what to do."""


class SequenceConflict(StoreError):
    """An append whose sequence numbers clash with the stored stream (duplicate or gap)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or written right now; retrying later may succeed."""


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One row as stored: the encoded event, not yet decoded (what the hash is over)."""

    session_id: str
    seq: int
    record: EventRecord
    hash: str
    prev_hash: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class StoredEvent:
    session_id: str
    seq: int
    event: Event
    hash: str
    prev_hash: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session's summary, maintained beside its events for listing without a replay."""

    session_id: str
    task: str
    capture_id: int
    level: int
    rules_version: str
    created_at: datetime
    updated_at: datetime
    state: str  # a khfsm.domain.machine.State value
    end_status: int | None  # an EndStatus value once ended
    count: int
    total: int
    frames: int
    events: int  # number of stored events (= the next sequence number)

    def summary(self) -> SessionSummary:
        """The summary these columns hold (the scalar fields of the evolved summary)."""
        return SessionSummary(
            state=State(self.state),
            end_status=self.end_status,
            count=self.count,
            total=self.total,
            frames=self.frames,
            events=self.events,
        )


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    first_bad_seq: int | None
    message: str
    events: int = 0


class EventRecorder(ABC):
    """Stores session streams. Implementations are safe to call from one thread at a time."""

    @abstractmethod
    def append(self, session_id: str, first_seq: int, events: Sequence[Event]) -> list[StoredEvent]:
        """Store `events` as seqs first_seq, first_seq+1, ... in one transaction.

        Raises `SequenceConflict` when first_seq is not exactly the next number of the
        session (a duplicate or a gap), `StoreUnavailable` when the database cannot be
        written; in both cases nothing of the batch is stored.
        """

    @abstractmethod
    def read_records(self, session_id: str, from_seq: int = 0) -> list[StoredRecord]:
        """The stored rows of a session from `from_seq` on, in sequence order, undecoded."""

    def read_records_of(self, session_id: str, types: Collection[str]) -> list[StoredRecord]:
        """The stored rows of a session whose type is one of `types`, in sequence order
        (a backend may filter in the database; this default filters `read_records`)."""
        wanted = set(types)
        return [row for row in self.read_records(session_id) if row.record.type in wanted]

    @abstractmethod
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
        """Sessions matching every given filter, newest first."""

    @abstractmethod
    def session(self, session_id: str) -> SessionRow | None:
        """One session's summary, or None when no such session is stored."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the recorder is unusable afterwards."""

    def read(self, session_id: str) -> list[StoredEvent]:
        """A session's events in sequence order (empty when the session is unknown)."""
        return decode_rows(session_id, self.read_records(session_id))

    def events(self, session_id: str) -> list[Event]:
        return [stored.event for stored in self.read(session_id)]

    def verify_chain(self, session_id: str) -> ChainReport:
        """Recompute the hash chain of a session and name the first row that breaks it."""
        summary = self.session(session_id)
        rows = self.read_records(session_id)
        if summary is None and not rows:
            return ChainReport(False, None, f"no session {session_id} is stored")
        return check_chain(session_id, rows, summary)


def check_chain(
    session_id: str, rows: Sequence[StoredRecord], summary: SessionRow | None
) -> ChainReport:
    previous = GENESIS_HASH
    for expected_seq, row in enumerate(rows):
        if row.seq != expected_seq:
            return ChainReport(
                False, expected_seq, f"event {expected_seq} is missing (next stored is {row.seq})"
            )
        if row.prev_hash != previous:
            return ChainReport(
                False,
                row.seq,
                f"event {row.seq} ({row.record.type}) does not link to event {row.seq - 1}: "
                "a row was removed, reordered or rewritten",
            )
        computed = chain_hash(previous, session_id, row.seq, row.record)
        if computed != row.hash:
            return ChainReport(
                False,
                row.seq,
                f"event {row.seq} ({row.record.type}) was altered after it was stored: "
                f"its content hashes to {computed[:12]}…, the stored hash is {row.hash[:12]}…",
            )
        previous = row.hash
    if summary is not None and summary.events != len(rows):
        # The chain alone cannot see rows cut off its end; the summary row counts them.
        return ChainReport(
            False,
            len(rows),
            f"the session records {summary.events} events but {len(rows)} are stored: "
            f"event {len(rows)} onwards is missing",
            events=len(rows),
        )
    return ChainReport(True, None, f"hash chain intact over {len(rows)} events", events=len(rows))


def decode_rows(session_id: str, rows: Iterable[StoredRecord]) -> list[StoredEvent]:
    """Stored rows of `session_id` as events; `StoreError` naming the first row whose record
    does not decode (`khfsm verify` says more about such a session)."""
    stored = []
    for row in rows:
        try:
            event = decode(row.record)
        except CodecError as error:
            raise StoreError(
                f"event {row.seq} of session {session_id} cannot be decoded: {error}"
            ) from error
        stored.append(
            StoredEvent(row.session_id, row.seq, event, row.hash, row.prev_hash, row.recorded_at)
        )
    return stored
