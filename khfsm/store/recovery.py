"""Start-up after a crash: drain the spool into the store, then end what the crash left open.

Runs before the server accepts lanes (`khfsm.site.Site`), in a worker thread:

1. Every spool file left behind (`khfsm.store.spool`) is drained into the database. Events
   already stored are recognised by their sequence number and content (the stored record
   must be the spooled one, byte for byte), so a crash between the database's commit and
   the file's removal stores nothing twice. A file that disagrees with the store, or that
   the store refuses, is set aside (renamed ``*.refused``) and reported, never dropped.
2. Every session the crash left open (no `SessionEnded`) is ended. Its events are re-driven
   through the domain (`khfsm.domain.run.Drive`) under the rules it was judged by; what
   the rules derive from its last stored inputs but the crash kept from being stored (a rep,
   a time-up) is appended first. A session still running after that ends with the input
   `SourceFailed(status=-7 "server stopped unexpectedly")`: the same input a lost camera
   (-4) or a broken pipeline (-5) records, so the session machine, the fold and `replay`
   treat it exactly like those endings and re-derive its `SessionEnded` bit for bit. No new
   event type is needed: a crash is the input that stopped arriving. The partial recording
   (a fragmented MP4 that decodes up to its last fragment) is hashed into that end, as the
   live pipeline seals a normal one.

Which sessions count as left open: those with a spool file (each of this server's sessions
has one until it has ended), and on SQLite every session stored open — the embedded file
belongs to this server alone. A PostgreSQL database may be shared by several servers, whose
running sessions must not be ended by another's start: there only the spool decides.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from khfsm.domain.codec import decode
from khfsm.domain.codes import EndStatus
from khfsm.domain.events import Event, SessionEnded, SessionPrepared, SourceFailed
from khfsm.domain.machine import State
from khfsm.domain.run import Drive, take
from khfsm.errors import KhfsmError
from khfsm.hashing import file_sha256
from khfsm.store.recorder import EventRecorder, StoreError, StoreUnavailable
from khfsm.store.spool import Spool, SpoolError

log = logging.getLogger(__name__)

BATCH = 500  # events per transaction while draining


class RecoveryError(KhfsmError):
    """A session that cannot be ended consistently; the message says what to check."""


@dataclass(frozen=True, slots=True)
class Ended:
    """A session recovery ended: with -7, or as its stored inputs already decided."""

    session_id: str
    status: int
    message: str
    appended: int  # events appended (derived ones, the crash input, the end)
    video_sha256: str | None
    video_bytes: int | None


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    drained: int  # spool files drained
    events: int  # events they added to the store
    ended: list[Ended]
    set_aside: list[Path]
    seconds: float


def recover(recorder: EventRecorder, spool: Spool, *, every_open_session: bool) -> RecoveryReport:
    """Drain `spool` into `recorder`, then end the sessions left open (see the module doc).

    Raises `StoreUnavailable` when the database cannot be written: the spool is then kept
    as it is, for the next attempt."""
    began = time.monotonic()
    drained = added = 0
    ended: list[Ended] = []
    set_aside: list[Path] = []
    handled: set[str] = set()
    for session_id in spool.left_behind():
        handled.add(session_id)
        try:
            added += _drain(recorder, spool, session_id)
            drained += 1
            row = recorder.session(session_id)
            if row is not None and row.end_status is None:
                ended.append(end_open_session(recorder, session_id))
            spool.discard(session_id)
        except StoreUnavailable:
            raise
        except (StoreError, SpoolError, RecoveryError) as error:
            set_aside.append(_set_aside(spool, session_id, error))
    if every_open_session:
        for state in (State.PREPARED, State.RUNNING):
            for row in recorder.list_sessions(state=state.value):
                if row.session_id in handled:
                    continue
                try:
                    ended.append(end_open_session(recorder, row.session_id))
                except StoreUnavailable:
                    raise
                except (StoreError, RecoveryError) as error:
                    log.error("session %s stays open: %s", row.session_id, error)
    report = RecoveryReport(drained, added, ended, set_aside, time.monotonic() - began)
    if drained or ended or set_aside:
        log.warning(
            "crash recovery: %d spool files drained (%d events stored), %d sessions ended, "
            "%d files set aside, in %.2f s",
            drained,
            added,
            len(ended),
            len(set_aside),
            report.seconds,
        )
    return report


def _drain(recorder: EventRecorder, spool: Spool, session_id: str) -> int:
    """Store what the spool file of `session_id` holds beyond the stored stream; the number
    of events added."""
    spooled = spool.read(session_id)
    if spooled.database and spooled.database != spool.database:
        raise SpoolError(
            f"{spooled.path} was written for the event store {spooled.database}, not "
            f"{spool.database}; drain it with that store"
        )
    if spooled.torn:
        log.info("%s: its last line was cut short by the crash and is ignored", spooled.path)
    row = recorder.session(session_id)
    stored = row.events if row is not None else 0
    if spooled.first_seq > stored:
        raise SpoolError(
            f"{spooled.path} begins at event {spooled.first_seq} but the store holds only "
            f"{stored} events of session {session_id}: events in between are missing"
        )
    overlap = spooled.records[: max(0, stored - spooled.first_seq)]
    if overlap:
        rows = recorder.read_records(session_id, spooled.first_seq)
        if [r.record for r in rows[: len(overlap)]] != overlap:
            raise SpoolError(
                f"{spooled.path} disagrees with the stored events of session {session_id}"
            )
    new = spooled.records[len(overlap) :]
    for start in range(0, len(new), BATCH):
        events = [decode(record) for record in new[start : start + BATCH]]
        try:
            recorder.append(session_id, stored + start, events)
        except StoreError:
            raise
        except Exception as error:  # e.g. OverflowError: a value the driver cannot hold
            raise StoreError(f"{type(error).__name__}: {error}") from error
    return len(new)


def end_open_session(recorder: EventRecorder, session_id: str) -> Ended:
    """End a session left open by a crash (see the module doc); what was appended."""
    from khfsm.registry import get_task  # the installed rules: only needed here

    events = recorder.events(session_id)
    if not events or not isinstance(events[0], SessionPrepared):
        raise RecoveryError(f"session {session_id} has no SessionPrepared event")
    prepared = events[0]
    try:
        task = get_task(prepared.task, prepared.rules_version)
    except KhfsmError as error:
        raise RecoveryError(f"session {session_id} cannot be ended: {error}") from error
    drive = Drive(task, who=f"session {session_id}").feed(events)
    if drive.events[: len(events)] != events:
        raise RecoveryError(
            f"the stored events of session {session_id} do not replay under rules "
            f"{prepared.rules_version}; run `khfsm verify {session_id}`"
        )
    tail: list[Event] = drive.events[len(events) :]
    if not drive.session.ended:
        crashed = EndStatus.SERVER_CRASHED
        failed = SourceFailed(
            frame=drive.session.progress.frames, status=int(crashed), message=crashed.message
        )
        tail += take(drive.session, failed)
    end = tail[-1] if tail else None
    if not isinstance(end, SessionEnded):  # pragma: no cover - every ending derives one
        raise RecoveryError(f"session {session_id} did not end when its crash was recorded")
    sha256, size = _hash_recording(prepared.video_path)
    tail[-1] = end.sealed(sha256, size)
    recorder.append(session_id, len(events), tail)
    log.warning(
        "session %s (%s, capture %d) ended at start-up with status %d (%s): %d frames, "
        "count %d of %d, recording %s",
        session_id,
        prepared.task,
        prepared.capture_id,
        end.status,
        end.message,
        end.frames,
        end.count,
        end.total,
        f"{size} bytes sha256 {sha256[:12]}" if sha256 else "none",
    )
    return Ended(session_id, end.status, end.message, len(tail), sha256, size)


def _hash_recording(video_path: str) -> tuple[str | None, int | None]:
    if not video_path:
        return None, None
    path = Path(video_path)
    try:
        return file_sha256(path), path.stat().st_size
    except OSError:  # never recorded (ended before its start) or removed
        return None, None


def _set_aside(spool: Spool, session_id: str, error: KhfsmError) -> Path:
    try:
        path = spool.set_aside(session_id)
    except OSError as rename_error:
        log.error("spool file of session %s: %s; %s", session_id, error, rename_error)
        return spool.directory / session_id
    log.error("spool file of session %s set aside as %s: %s", session_id, path, error)
    return path
