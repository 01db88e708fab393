"""The local spool: every submitted event reaches the server's own disk before the database.

One append-only file per session, ``<spool dir>/<session id>.jsonl`` (JSON Lines, chosen
over a binary log because an operator can read it with any tool):

    {"spool": 1, "session": "<id>", "database": "<store URL, password masked>"}
    {"seq": 0, "type": "SessionPrepared", "version": 1, "payload": "{...}", "blob": null}
    {"seq": 1, ... "blob": "<base64 of the FrameObserved keypoints>"}

Each event line holds the event's stored record (`khfsm.domain.codec.EventRecord`), exactly
what the database row will hold, so a drained event hashes the same. Lines are written as
the lanes submit events and fsync'd in batches (once per writer tick, `Spool.sync`); a line
that a crash cut short has no newline and is ignored. The event writer drains the spool into
the database and removes a session's file once its `SessionEnded` is durable there. Files
left behind are a crash's: `khfsm.store.recovery` drains them at the next start, before the
server accepts lanes. The header names the database so that a spool is never drained into
another store than the one it was written for.

One server owns a spool directory at a time (an advisory lock on ``.lock``): two servers
draining the same files would end each other's sessions.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from khfsm.domain.codec import EventRecord
from khfsm.errors import KhfsmError
from khfsm.store.ownership import hold_lock

FORMAT = 1
SUFFIX = ".jsonl"
SET_ASIDE_SUFFIX = ".refused"


class SpoolError(KhfsmError):
    """The spool cannot be used or one of its files cannot be read; the message says why."""


@dataclass(frozen=True, slots=True)
class SpooledSession:
    """What a spool file holds: a session's records from `first_seq` on, without gaps."""

    session_id: str
    path: Path
    database: str
    first_seq: int
    records: list[EventRecord]
    torn: bool  # its last line was cut short (a crash in mid-write): ignored

    @property
    def next_seq(self) -> int:
        return self.first_seq + len(self.records)


class Spool:
    """The spool directory. Thread-safe: the writer appends from worker threads."""

    def __init__(self, directory: Path, database: str) -> None:
        self.directory = directory
        self.database = database
        self._files: dict[str, IO[bytes]] = {}
        self._unsynced: set[str] = set()
        self._new_files = False
        self._lock = threading.Lock()
        self._lock_file: IO[bytes] | None = None

    # -- owning the directory -----------------------------------------------------------------

    def open(self) -> Spool:
        """Create the directory and take its lock; raises `SpoolError` when another server
        holds it or the directory cannot be used."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            lock_file = hold_lock(self.directory / ".lock")
        except OSError as error:
            raise SpoolError(f"cannot use the spool directory {self.directory}: {error}") from error
        if lock_file is None:
            raise SpoolError(
                f"another khfsm server uses the spool directory {self.directory}; give each "
                "server its own data directory (--data-dir / KHFSM_DATA_DIR)"
            )
        self._lock_file = lock_file
        return self

    def close(self) -> None:
        with self._lock:
            for file in self._files.values():
                file.close()
            self._files.clear()
            if self._lock_file is not None:
                self._lock_file.close()  # releases the lock
                self._lock_file = None

    # -- writing (the event writer) -------------------------------------------------------------

    def append(self, session_id: str, first_seq: int, records: Sequence[EventRecord]) -> None:
        """Write `records` as seqs first_seq, ...; durable only after the next `sync`."""
        lines = [_line(first_seq + offset, record) for offset, record in enumerate(records)]
        with self._lock:
            file = self._files.get(session_id)
            if file is None:
                file = self._path(session_id).open("ab")
                if file.tell() == 0:
                    header = {"spool": FORMAT, "session": session_id, "database": self.database}
                    file.write(_json(header))
                self._files[session_id] = file
                self._new_files = True
            file.write(b"".join(lines))
            self._unsynced.add(session_id)

    def sync(self) -> None:
        """Make everything appended so far durable: one fsync per file written to."""
        with self._lock:
            for session_id in self._unsynced:
                file = self._files.get(session_id)
                if file is not None:
                    file.flush()
                    os.fsync(file.fileno())
            self._unsynced.clear()
            if self._new_files:
                # A new file's directory entry must be durable too, or a crash loses the file.
                _fsync_directory(self.directory)
                self._new_files = False

    def discard(self, session_id: str) -> None:
        """Remove a session's file: all of it is durable in the database."""
        with self._lock:
            file = self._files.pop(session_id, None)
            if file is not None:
                file.close()
            self._unsynced.discard(session_id)
            self._path(session_id).unlink(missing_ok=True)

    def set_aside(self, session_id: str) -> Path:
        """Rename a file the database refused, keeping it for the administrator."""
        with self._lock:
            file = self._files.pop(session_id, None)
            if file is not None:
                file.close()
            path = self._path(session_id)
            target = path.with_name(path.name + SET_ASIDE_SUFFIX)
            path.replace(target)
            return target

    # -- reading (recovery) ---------------------------------------------------------------------

    def left_behind(self) -> list[str]:
        """Sessions whose files are in the directory, oldest file first."""
        files = sorted(self.directory.glob("*" + SUFFIX), key=lambda path: path.stat().st_mtime)
        return [path.name.removesuffix(SUFFIX) for path in files]

    def read(self, session_id: str) -> SpooledSession:
        path = self._path(session_id)
        data = path.read_bytes()
        lines = data.split(b"\n")
        torn = lines[-1] != b""  # the last line has no newline: cut short by a crash
        complete = lines[:-1]
        if not complete:
            raise SpoolError(f"{path} has no header line")
        header = _parse(path, 1, complete[0])
        if header.get("spool") != FORMAT or header.get("session") != session_id:
            raise SpoolError(f"{path} is not a khfsm spool file of session {session_id}")
        records: list[EventRecord] = []
        first_seq = 0
        for number, raw in enumerate(complete[1:], start=2):
            line = _parse(path, number, raw)
            try:
                seq = int(line["seq"])
                blob = line["blob"]
                record = EventRecord(
                    type=str(line["type"]),
                    version=int(line["version"]),
                    payload=str(line["payload"]),
                    blob=base64.b64decode(blob) if blob is not None else None,
                )
            except (KeyError, TypeError, ValueError) as error:
                raise SpoolError(f"{path} line {number} is not an event record: {error}") from error
            if not records:
                first_seq = seq
            elif seq != first_seq + len(records):
                raise SpoolError(
                    f"{path} line {number} has seq {seq}, expected {first_seq + len(records)}"
                )
            records.append(record)
        return SpooledSession(
            session_id=session_id,
            path=path,
            database=str(header.get("database", "")),
            first_seq=first_seq,
            records=records,
            torn=torn,
        )

    def _path(self, session_id: str) -> Path:
        if not session_id or "/" in session_id or session_id.startswith("."):
            raise SpoolError(f"session id {session_id!r} cannot name a spool file")
        return self.directory / (session_id + SUFFIX)


def _line(seq: int, record: EventRecord) -> bytes:
    blob = base64.b64encode(record.blob).decode("ascii") if record.blob is not None else None
    return _json(
        {
            "seq": seq,
            "type": record.type,
            "version": record.version,
            "payload": record.payload,
            "blob": blob,
        }
    )


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"


def _parse(path: Path, number: int, raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise SpoolError(f"{path} line {number} is not JSON: {error}") from error
    if not isinstance(value, dict):
        raise SpoolError(f"{path} line {number} is not a JSON object")
    return value


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
