"""Batched, asynchronous appends: the lanes hand events over and never wait on the disk.

`submit` is instant and numbers the events (per session from 0); `run`, started once in the
server's task group, writes what is pending every `max_delay_ms`, or sooner when
`max_batch` events wait, one transaction per session batch in a worker thread (one at a
time: SQLite has a single writer anyway). `flush` returns once a session's events are
durable; the lane awaits it before its terminal push.

A database outage loses nothing: events stay in memory and are retried with backoff, with
one log line when the outage starts and one when it ends. A batch the store refuses for good
(a sequence conflict, an unencodable event) stops that session's writes and makes its
`flush` raise, but never affects other sessions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio

from khfsm.domain.codec import encode
from khfsm.domain.events import Event
from khfsm.store.recorder import EventRecorder, SequenceConflict, StoreError, StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Stream:
    next_seq: int = 0  # the seq the next submitted event gets
    durable: int = 0  # events before this seq are stored
    pending: list[Event] = field(default_factory=list)  # seqs durable .. next_seq - 1
    failed: StoreError | None = None  # refused for good: not retried


class EventWriter:
    def __init__(
        self,
        recorder: EventRecorder,
        *,
        max_delay_ms: float = 100,
        max_batch: int = 200,
        flush_timeout_s: float = 10.0,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        shutdown_timeout_s: float = 30.0,
    ) -> None:
        self._recorder = recorder
        self._max_delay = max_delay_ms / 1000
        self._max_batch = max_batch
        self._flush_timeout = flush_timeout_s
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._shutdown_timeout = shutdown_timeout_s
        self._streams: dict[str, _Stream] = {}
        self._limiter = anyio.CapacityLimiter(1)
        self._wake: anyio.Event | None = None  # created inside the event loop
        self._progress: anyio.Event | None = None
        self._backoff = 0.0
        self._retry_at = 0.0
        self._outage_since: float | None = None
        self._last_error: StoreError | None = None

    # -- the lanes' side ----------------------------------------------------------------------

    def submit(self, session_id: str, events: Sequence[Event]) -> None:
        """Queue `events` as the next of `session_id`; never blocks. Call from the event loop."""
        if not events:
            return
        stream = self._streams.setdefault(session_id, _Stream())
        stream.pending.extend(events)
        stream.next_seq += len(events)
        if self._wake is not None and self.pending_events >= self._max_batch:
            self._wake.set()

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
                progress = self._progress_event()
                if self._wake is not None:
                    self._wake.set()
                await progress.wait()
        if stream.durable < target:
            reason = f": {self._last_error}" if self._last_error is not None else ""
            raise StoreUnavailable(
                f"events {stream.durable}..{target - 1} of session {session_id} are not stored "
                f"after {self._flush_timeout:g} s{reason}; they are kept in memory and retried"
            )

    def next_seq(self, session_id: str) -> int:
        stream = self._streams.get(session_id)
        return 0 if stream is None else stream.next_seq

    @property
    def pending_events(self) -> int:
        return sum(len(stream.pending) for stream in self._streams.values())

    # -- the writer task ----------------------------------------------------------------------

    async def run(self) -> None:
        """Write pending events until cancelled; then write what remains before returning."""
        self._wake = anyio.Event()
        try:
            while True:
                with anyio.move_on_after(self._max_delay):
                    await self._wake.wait()
                self._wake = anyio.Event()
                await self._write_pending()
        finally:
            with anyio.move_on_after(self._shutdown_timeout, shield=True):
                await self._drain()
            if self.pending_events:
                log.error(
                    "event writer stopped with %d events of %d sessions not stored (%s)",
                    self.pending_events,
                    sum(1 for s in self._streams.values() if s.pending),
                    self._last_error,
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
                batch = stream.pending[: self._max_batch]
                written = await self._write(session_id, stream.durable, batch)
                if written:
                    del stream.pending[: len(batch)]
                    stream.durable += len(batch)
                self._notify()
                if not written:
                    break

    async def _write(self, session_id: str, first_seq: int, batch: list[Event]) -> bool:
        try:
            await anyio.to_thread.run_sync(
                self._recorder.append, session_id, first_seq, batch, limiter=self._limiter
            )
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
        self._recovered()
        return True

    async def _already_stored(self, session_id: str, first_seq: int, batch: list[Event]) -> bool:
        try:
            stored = await anyio.to_thread.run_sync(
                self._recorder.read_records, session_id, first_seq, limiter=self._limiter
            )
        except StoreError:
            return False
        wanted = [encode(event) for event in batch]
        return [row.record for row in stored[: len(wanted)]] == wanted

    def _refuse(self, session_id: str, error: StoreError) -> bool:
        self._streams[session_id].failed = error
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
                "%s; keeping %d events in memory and retrying every %g s at most",
                error,
                self.pending_events,
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

    def _progress_event(self) -> anyio.Event:
        if self._progress is None:
            self._progress = anyio.Event()
        return self._progress

    def _notify(self) -> None:
        if self._progress is not None:
            self._progress.set()
            self._progress = None
