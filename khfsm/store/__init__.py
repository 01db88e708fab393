"""The event store: session streams with chained hashes, on SQLite or PostgreSQL.

`open_recorder(url)` gives an `EventRecorder`; `EventWriter` batches appends off the hot
path; `khfsm.store.migrate` applies the Alembic schema.
"""

from khfsm.store.recorder import (
    ChainReport,
    EventRecorder,
    SequenceConflict,
    SessionRow,
    StoredEvent,
    StoredRecord,
    StoreError,
    StoreUnavailable,
)
from khfsm.store.sql import SqlRecorder, open_recorder

__all__ = [
    "ChainReport",
    "EventRecorder",
    "SequenceConflict",
    "SessionRow",
    "SqlRecorder",
    "StoreError",
    "StoreUnavailable",
    "StoredEvent",
    "StoredRecord",
    "open_recorder",
]
