"""Batched, asynchronous appends: the lanes hand events over and never wait on the disk.

`submit` is instant and numbers the events (per session from 0). Two loops, each a core
task of the server, carry them on:

- `run_spool` (optional, with a `Spool`) writes them to the session's local spool file and
  fsyncs once per tick (`max_delay_ms`): from then on a crash of the process loses nothing.
- `run` writes what the spool holds into the database every `database_delay_ms` (by
  default every tick), or sooner when a session has `max_batch` events waiting or a `flush`
  asks, one transaction per session batch in a worker thread (one at a time: SQLite has a
  single writer anyway), and removes a session's spool file once its `SessionEnded` is
  durable in the database. With a spool the database may lag the spool by design: fewer,
  larger transactions cost less per event, and the spool already keeps every event safe.

`flush` returns once a session's events are durable in the database; the lane awaits it
before its terminal push.

A database outage loses nothing: events stay in memory (and in the spool) and are retried
with backoff, with one log line when the outage starts and one when it ends. A database
that does not answer within `write_timeout_s` (a blackholed network) counts as an outage
too. A batch the store refuses for good (a sequence conflict, an unencodable event, a value
the driver cannot hold, any other exception of the store) stops that session's writes and
makes its `flush` raise, but never affects other sessions: one session never stops the
writer. When the spool itself fails (its disk), `run_spool` raises — the server treats
that as the death of a core task — and the writer carries on, database only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import anyio

from khfsm.domain.codec import EventRecord, encode
from khfsm.domain.events import Event, SessionEnded
from khfsm.store.recorder import EventRecorder, SequenceConflict, StoreError, StoreUnavailable
from khfsm.store.spool import Spool

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class _Stream:
    next_seq: int = 0  # the seq the next submitted event gets
    durable: int = 0  # events before this seq are stored in the database
    spooled: int = 0  # events before this seq are in the spool (fsync'd)
    pending: list[Event] = field(default_factory=list)  # seqs durable .. next_seq - 1
    failed: StoreError | None = None  # refused for good: not retried
    ended: bool = False  # its SessionEnded was submitted: no more events expected


@dataclass(frozen=True, slots=True)
class _SpoolBatch:
    session_id: str
    first_seq: int
    events: list[Event]


class EventWriter:
    def __init__(
        self,
        recorder: EventRecorder,
        *,
        spool: Spool | None = None,
        max_delay_ms: float = 100,
        database_delay_ms: float | None = None,
        max_batch: int = 200,
        flush_timeout_s: float = 10.0,
        write_timeout_s: float | None = None,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        shutdown_timeout_s: float = 30.0,
    ) -> None:
        self._recorder = recorder
        self._spool = spool
        self._max_delay = max_delay_ms / 1000
        self._database_delay = (
            self._max_delay if database_delay_ms is None else database_delay_ms / 1000
        )
        self._max_batch = max_batch
        self._flush_timeout = flush_timeout_s
        self._write_timeout = write_timeout_s
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._shutdown_timeout = shutdown_timeout_s
        self._streams: dict[str, _Stream] = {}
        self._limiter = anyio.CapacityLimiter(1)
        self._spool_limiter = anyio.CapacityLimiter(1)  # never queued behind a stuck database
        self._wake: anyio.Event | None = None  # created inside the event loop
        self._spool_wake: anyio.Event | None = None
        self._progress: anyio.Event | None = None
        self._backoff = 0.0
        self._retry_at = 0.0
        self._outage_since: float | None = None
        self._last_error: StoreError | None = None
        self._spool_waiters: list[tuple[str, int, Callable[[], None]]] = []
        self._stopped = False  # `run` has returned: nothing reaches the database any more
        self._closing = False  # shutting down: write whatever is pending, spooled or not

    # -- the lanes' side ----------------------------------------------------------------------

    def submit(self, session_id: str, events: Sequence[Event]) -> None:
        """Queue `events` as the next of `session_id`; never blocks. Call from the event loop."""
        if not events:
            return
        stream = self._streams.setdefault(session_id, _Stream())
        stream.pending.extend(events)
        stream.next_seq += len(events)
        stream.ended = stream.ended or any(isinstance(e, SessionEnded) for e in events)
        if self._spool is None:
            stream.spooled = stream.next_seq
        # A full batch of this session goes now. Counted per session, not over all of them:
        # a hundred lanes submit 2,000 events a second, and a threshold over the sum would
        # write every few ticks whatever `database_delay_ms` says.
        if len(stream.pending) >= self._max_batch:
            self._wake_all()

    async def flush(self, session_id: str) -> None:
        """Return once everything submitted for `session_id` so far is stored.

        Raises `StoreError` when the store refused the session's events, or
        `StoreUnavailable` when they could not be written within `flush_timeout_s` (they are
        still kept and retried).
        """
        stream = self._streams.get(session_id)
        if stream is None:
            return
        target = stream.next_seq
        with anyio.move_on_after(self._flush_timeout):
            while stream.durable < target:
                if stream.failed is not None:
                    raise StoreError(
                        f"events of session {session_id} were not stored: {stream.failed}"
                    ) from stream.failed
                if self._stopped:
                    break  # the writer has stopped: waiting would only delay the answer
                progress = self._progress_event()
                self._wake_all()
                await progress.wait()
        if stream.durable < target:
            reason = f": {self._last_error}" if self._last_error is not None else ""
            if self._stopped:
                reason = ": the event writer has stopped" + reason
            spooled = self._spool is not None and stream.spooled >= target
            kept = "in the local spool" if spooled else "in memory"
            raise StoreUnavailable(
                f"events {stream.durable}..{target - 1} of session {session_id} are not stored "
                f"after {self._flush_timeout:g} s{reason}; they are kept {kept} and retried"
            )

    def when_spooled(self, session_id: str, callback: Callable[[], None]) -> None:
        """Call `callback()` in the event loop once everything submitted for `session_id` so
        far is safe on the local disk (at once without a spool, or once the session's
        events are refused or the spool is lost): what a lane tells its tablet then
        survives a crash. Callbacks run in the order they were registered."""
        stream = self._streams.get(session_id)
        if stream is None or stream.spooled >= stream.next_seq or stream.failed is not None:
            _call_back(callback)
            return
        self._spool_waiters.append((session_id, stream.next_seq, callback))
        # Someone waits (a rep's push): spool now rather than at the next tick. Reps are a
        # few a second on a whole site, so the extra fsyncs cost little, and the push is not
        # held back up to a whole tick.
        if self._spool_wake is not None:
            self._spool_wake.set()

    def _release_spool_waiters(self) -> None:
        waiting, self._spool_waiters = self._spool_waiters, []
        for session_id, target, callback in waiting:
            stream = self._streams.get(session_id)
            if (
                stream is None  # ended and stored (in closing, before it was spooled)
                or stream.spooled >= target
                or stream.failed is not None
                or self._spool is None
            ):
                _call_back(callback)
            else:
                self._spool_waiters.append((session_id, target, callback))

    def next_seq(self, session_id: str) -> int:
        stream = self._streams.get(session_id)
        return 0 if stream is None else stream.next_seq

    @property
    def sessions_held(self) -> int:
        """Sessions the writer holds: those not ended, or not yet stored, or refused. An
        ended session is let go once all its events are stored."""
        return len(self._streams)

    @property
    def pending_events(self) -> int:
        return sum(len(stream.pending) for stream in self._streams.values())

    @property
    def spooling(self) -> bool:
        return self._spool is not None

    # -- the spool task -----------------------------------------------------------------------

    async def run_spool(self) -> None:
        """Spool submitted events and fsync them every tick until cancelled.

        An I/O error of the spool is raised (after the writer has switched to writing
        straight to the database): losing crash safety is the server's to report."""
        self._spool_wake = anyio.Event()
        if self._spool_waiters:  # registered before this task began (see when_spooled)
            self._spool_wake.set()
        try:
            while True:
                with anyio.move_on_after(self._max_delay):
                    await self._spool_wake.wait()
                self._spool_wake = anyio.Event()
                await self._spool_pending()
        except OSError as error:
            self._lose_spool(error)
            raise
        finally:
            if self._spool is not None:
                with anyio.move_on_after(5.0, shield=True):
                    try:
                        await self._spool_pending()
                    except OSError as error:
                        self._lose_spool(error)

    async def _spool_pending(self) -> None:
        spool = self._spool
        if spool is None:
            return
        batches = [
            _SpoolBatch(
                session_id, stream.spooled, stream.pending[stream.spooled - stream.durable :]
            )
            for session_id, stream in self._streams.items()
            if stream.failed is None and stream.spooled < stream.next_seq
        ]
        if not batches:
            return
        refused = await anyio.to_thread.run_sync(
            _spool_batches, spool, batches, limiter=self._spool_limiter
        )
        for batch in batches:
            stream = self._streams.get(batch.session_id)
            if stream is None:  # stored meanwhile (closing writes unspooled events) and let go
                continue
            error = refused.get(batch.session_id)
            if error is not None:
                self._refuse(batch.session_id, error)
            else:
                stream.spooled = max(stream.spooled, batch.first_seq + len(batch.events))
        self._release_spool_waiters()
        # What was just spooled may go on to the database: now when a `flush` waits for it
        # (or the database follows every tick), else at the database's own next tick.
        waited_for = self._progress is not None
        if self._wake is not None and (waited_for or self._database_delay <= self._max_delay):
            self._wake.set()

    def _lose_spool(self, error: OSError) -> None:
        log.critical(
            "the local spool in %s failed (%s): events are written to the database only and "
            "a crash now loses the last ones; the server stops so that it can be restarted",
            self._spool.directory if self._spool is not None else "?",
            error,
        )
        self._spool = None
        for stream in self._streams.values():
            stream.spooled = stream.next_seq
        self._release_spool_waiters()
        if self._wake is not None:
            self._wake.set()

    # -- the database task --------------------------------------------------------------------

    async def run(self) -> None:
        """Write pending events until cancelled; then write what remains before returning."""
        self._wake = anyio.Event()
        try:
            while True:
                with anyio.move_on_after(self._database_delay):
                    await self._wake.wait()
                self._wake = anyio.Event()
                await self._write_pending()
        finally:
            self._closing = True
            with anyio.move_on_after(self._shutdown_timeout, shield=True):
                await self._drain()
            self._stopped = True
            self._notify()
            if self.pending_events:
                log.error(
                    "event writer stopped with %d events of %d sessions not stored (%s)%s",
                    self.pending_events,
                    sum(1 for s in self._streams.values() if s.pending),
                    self._last_error,
                    "; the spool keeps them for the next start" if self._spool else "",
                )

    async def _drain(self) -> None:
        while any(s.pending and s.failed is None for s in self._streams.values()):
            await anyio.sleep(max(0.0, self._retry_at - time.monotonic()))
            await self._write_pending()

    async def _write_pending(self) -> None:
        for session_id, stream in list(self._streams.items()):
            while stream.pending and stream.failed is None:
                if time.monotonic() < self._retry_at:
                    return  # backing off after an outage
                # Only what is safe on the local disk goes on to the database, so that the
                # spool is always a superset of the database's unfinished sessions.
                ready = len(stream.pending) if self._closing else stream.spooled - stream.durable
                if ready <= 0:
                    break
                batch = stream.pending[: min(ready, self._max_batch)]
                written = await self._write(session_id, stream.durable, batch)
                if written:
                    del stream.pending[: len(batch)]
                    stream.durable += len(batch)
                    if stream.ended and not stream.pending:
                        await self._discard_spool(session_id)
                        # Let go of it: a server runs for weeks, and every submit and tick
                        # walks the streams held. A `flush` waiting on it holds the stream
                        # itself; a later `flush` of it finds nothing left to wait for.
                        if self._streams.get(session_id) is stream:
                            del self._streams[session_id]
                self._notify()
                if not written:
                    break

    async def _discard_spool(self, session_id: str) -> None:
        spool = self._spool
        if spool is None:
            return
        try:
            await anyio.to_thread.run_sync(spool.discard, session_id, limiter=self._spool_limiter)
        except OSError as error:  # left behind, it is drained (as already stored) at next start
            log.warning("could not remove the spool file of session %s: %s", session_id, error)

    async def _write(self, session_id: str, first_seq: int, batch: list[Event]) -> bool:
        try:
            await self._call(self._recorder.append, session_id, first_seq, batch)
        except StoreUnavailable as error:
            self._outage(error)
            return False
        except SequenceConflict as error:
            # After an outage a commit may have landed although its reply was lost: the
            # batch is then already stored, which is success, not a conflict.
            if await self._already_stored(session_id, first_seq, batch):
                self._recovered()
                return True
            return self._refuse(session_id, error)
        except StoreError as error:
            return self._refuse(session_id, error)
        except Exception as error:
            # Not the store's own error (e.g. OverflowError from SQLite for an integer of
            # 2**63 or more): a value of this session the driver cannot hold, or a bug. It is
            # this session's problem only; the writer carries on with the others.
            log.error("unexpected error storing events of session %s", session_id, exc_info=error)
            refusal = StoreError(f"the event store failed: {type(error).__name__}: {error}")
            return self._refuse(session_id, refusal)
        self._recovered()
        return True

    async def _already_stored(self, session_id: str, first_seq: int, batch: list[Event]) -> bool:
        try:
            stored = await self._call(self._recorder.read_records, session_id, first_seq)
            wanted = [encode(event) for event in batch]
        except Exception:  # whatever went wrong, it is not proven stored
            return False
        return [row.record for row in stored[: len(wanted)]] == wanted

    async def _call(self, function: Callable[..., T], *args: object) -> T:
        """`function(*args)` in the database's worker thread, within `write_timeout_s`.

        A database behind a dropped network answers nothing, and a driver may wait for TCP
        to give up (many minutes): past the timeout the call is abandoned (its thread ends
        when the driver does) and reported as an outage, to be retried."""
        if self._write_timeout is None:
            return await anyio.to_thread.run_sync(function, *args, limiter=self._limiter)
        try:
            with anyio.fail_after(self._write_timeout):
                return await anyio.to_thread.run_sync(
                    function, *args, limiter=self._limiter, abandon_on_cancel=True
                )
        except TimeoutError as error:
            raise StoreUnavailable(
                f"the event store did not answer within {self._write_timeout:g} s"
            ) from error

    def _refuse(self, session_id: str, error: StoreError) -> bool:
        self._streams[session_id].failed = error
        self._release_spool_waiters()
        log.error(
            "events of session %s cannot be stored and are held in memory: %s", session_id, error
        )
        return False

    def _outage(self, error: StoreUnavailable) -> None:
        self._last_error = error
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
            self._backoff = self._backoff_initial
            log.warning(
                "%s; keeping %d events %s and retrying every %g s at most",
                error,
                self.pending_events,
                "in memory and in the local spool" if self._spool else "in memory",
                self._backoff_max,
            )
        else:
            self._backoff = min(self._backoff * 2, self._backoff_max)
            log.debug("event store still unavailable: %s", error)
        self._retry_at = now + self._backoff

    def _recovered(self) -> None:
        if self._outage_since is not None:
            log.warning(
                "event store reachable again after %.1f s; writing %d buffered events",
                time.monotonic() - self._outage_since,
                self.pending_events,
            )
        self._outage_since = None
        self._last_error = None
        self._retry_at = 0.0

    def _wake_all(self) -> None:
        for wake in (self._spool_wake, self._wake):
            if wake is not None:
                wake.set()

    def _progress_event(self) -> anyio.Event:
        if self._progress is None:
            self._progress = anyio.Event()
        return self._progress

    def _notify(self) -> None:
        if self._progress is not None:
            self._progress.set()
            self._progress = None


def _call_back(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # a listener's failure is never the writer's
        log.exception("a callback waiting for the spool failed")


def _spool_batches(spool: Spool, batches: Sequence[_SpoolBatch]) -> dict[str, StoreError]:
    """Append and fsync `batches` (in a worker thread); the sessions whose events cannot be
    encoded are returned, refused. An I/O error of the spool is raised."""
    refused: dict[str, StoreError] = {}
    for batch in batches:
        try:
            records: list[EventRecord] = [encode(event) for event in batch.events]
        except Exception as error:  # CodecError or a bug: this session only
            refused[batch.session_id] = StoreError(
                f"event {batch.first_seq}.. of session {batch.session_id} cannot be encoded: "
                f"{error}"
            )
            continue
        spool.append(batch.session_id, batch.first_seq, records)
    spool.sync()
    return refused
