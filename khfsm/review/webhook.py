"""The result webhook: each session's result POSTed to the exam's records system as it ends.

Never in a lane's way: `ResultWebhook.notify` only puts the result in a bounded queue (a full
queue drops it, counted, and says so in the log); one task in the site's task group
(`run`) delivers them in order. A delivery that fails (no answer, a timeout, a 5xx, 408 or
429) is retried with exponential backoff up to `max_attempts`, then given up, counted; a
4xx other than those is a refusal that retrying cannot fix and is given up at once.
`status()` is what `/healthz` shows: delivered, failed attempts, given up, dropped, queued,
and the last error in words.

`ResultSink` wraps the store's writer in the lanes' context: a session's result is queued
once its `SessionEnded` is durable (after the flush that precedes the final push), built from
the events the lane submitted, so no database read is needed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx

from khfsm.domain.events import Event, SessionEnded, SessionPrepared
from khfsm.server.context import EventSink
from khfsm.server.paths import redact

log = logging.getLogger(__name__)

_RETRYABLE_CLIENT_ERRORS = {408, 429}


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    timeout_s: float = 10.0
    max_queue: int = 1000
    max_attempts: int = 8
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0


class ResultWebhook:
    def __init__(self, url: str, policy: WebhookPolicy | None = None) -> None:
        self.url = url
        self.policy = policy or WebhookPolicy()
        self._send, self._receive = anyio.create_memory_object_stream[dict[str, Any]](
            self.policy.max_queue
        )
        self.delivered = 0
        self.failed_attempts = 0
        self.given_up = 0
        self.dropped = 0
        self.last_error: str | None = None
        self.last_error_at: str | None = None
        self.last_delivered_at: str | None = None
        self._retrying_since: float | None = None
        self._outstanding = 0  # queued or being delivered
        self._idle: anyio.Event | None = None  # created in the event loop, when awaited

    # -- the lanes' side ----------------------------------------------------------------------

    def notify(self, result: dict[str, Any]) -> bool:
        """Queue `result` for delivery; never blocks. False (and counted) when the queue is
        full or the webhook has stopped."""
        try:
            self._send.send_nowait(result)
        except anyio.WouldBlock:
            self.dropped += 1
            log.error(
                "result webhook: queue full (%d results waiting); the result of session %s "
                "is not posted (it stays in `khfsm results`)",
                self.policy.max_queue,
                result.get("session_id"),
            )
            return False
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.dropped += 1
            return False
        self._outstanding += 1
        return True

    async def wait_idle(self) -> None:
        """Return once every queued result has been delivered or given up (for an orderly
        shutdown that wants them out, and for tests)."""
        while self._outstanding:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    def status(self) -> dict[str, Any]:
        """For /healthz."""
        return {
            "url": redact(self.url),
            "queued": self._send.statistics().current_buffer_used,
            "delivered": self.delivered,
            "failed_attempts": self.failed_attempts,
            "given_up": self.given_up,
            "dropped": self.dropped,
            "retrying": self._retrying_since is not None,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_delivered_at": self.last_delivered_at,
        }

    # -- the delivering task --------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver queued results until cancelled."""
        async with (
            httpx.AsyncClient(timeout=self.policy.timeout_s) as client,
            self._receive,
        ):
            async for result in self._receive:
                try:
                    await self._deliver(client, result)
                finally:
                    self._outstanding -= 1
                    if not self._outstanding and self._idle is not None:
                        self._idle.set()
                        self._idle = None

    async def _deliver(self, client: httpx.AsyncClient, result: dict[str, Any]) -> None:
        delay = self.policy.backoff_initial_s
        session = result.get("session_id")
        for attempt in range(1, self.policy.max_attempts + 1):
            error, retry = await self._post(client, result)
            if error is None:
                self.delivered += 1
                self.last_delivered_at = _now()
                if self._retrying_since is not None:
                    log.warning(
                        "result webhook %s answers again after %.0f s",
                        redact(self.url),
                        time.monotonic() - self._retrying_since,
                    )
                    self._retrying_since = None
                return
            self.failed_attempts += 1
            self.last_error, self.last_error_at = error, _now()
            if not retry or attempt == self.policy.max_attempts:
                break
            if self._retrying_since is None:
                self._retrying_since = time.monotonic()
                log.warning(
                    "result webhook %s: %s; retrying with backoff (up to %d attempts)",
                    redact(self.url),
                    error,
                    self.policy.max_attempts,
                )
            await anyio.sleep(delay)
            delay = min(delay * 2, self.policy.backoff_max_s)
        self.given_up += 1
        log.error(
            "result webhook %s: gave up posting the result of session %s: %s (it stays in "
            "`khfsm results`)",
            redact(self.url),
            session,
            self.last_error,
        )

    async def _post(
        self, client: httpx.AsyncClient, result: dict[str, Any]
    ) -> tuple[str | None, bool]:
        """(None, _) on success, else (the error in words, whether retrying may help)."""
        try:
            response = await client.post(self.url, json=result)
        except httpx.HTTPError as error:
            words = str(error) or "no answer"
            return f"{type(error).__name__}: {words}", True
        if response.is_success:
            return None, False
        code = response.status_code
        retry = code >= 500 or code in _RETRYABLE_CLIENT_ERRORS
        return f"HTTP {code} {response.reason_phrase}".strip(), retry


class ResultSink:
    """The store's writer as the lanes see it, queuing each session's result on its end."""

    def __init__(
        self,
        writer: EventSink,
        webhook: ResultWebhook,
        *,
        public_url: str | None = None,
        evidence_url: str | None = None,
    ) -> None:
        self._writer = writer
        self._webhook = webhook
        self._public_url = public_url
        self._evidence_url = evidence_url
        self._prepared: dict[str, SessionPrepared] = {}
        self._ended: dict[str, SessionEnded] = {}

    def submit(self, session_id: str, events: Sequence[Event]) -> None:
        self._writer.submit(session_id, events)
        for event in events:
            if isinstance(event, SessionPrepared):
                self._prepared[session_id] = event
            elif isinstance(event, SessionEnded):
                self._ended[session_id] = event

    async def flush(self, session_id: str) -> None:
        ended = self._ended.pop(session_id, None)
        prepared = self._prepared.pop(session_id, None) if ended is not None else None
        await self._writer.flush(session_id)  # raises when not durable: nothing is posted
        if ended is None:
            return
        self._webhook.notify(
            ended_result(session_id, prepared, ended, self._public_url, self._evidence_url)
        )

    def __getattr__(self, name: str) -> Any:
        # Everything else (pending_events, next_seq, ...) is the writer's own.
        return getattr(self._writer, name)


def ended_result(
    session_id: str,
    prepared: SessionPrepared | None,
    ended: SessionEnded,
    public_url: str | None,
    evidence_url: str | None,
) -> dict[str, Any]:
    """The webhook's body: the results export's row of a session that has just ended (no
    ruling yet: the reviewed result is the machine's)."""
    from khfsm.domain.review import VerdictRuling
    from khfsm.review.results import ResultRow, evidence_link

    candidate = getattr(prepared, "candidate", None) or None
    row = ResultRow(
        candidate=None if candidate is None else str(candidate),
        task="" if prepared is None else prepared.task,
        level=0 if prepared is None else prepared.level,
        count=ended.count,
        total=ended.total,
        end_status=ended.status,
        end_message=ended.message,
        reviewed=False,
        reviewed_count=ended.count,
        reviewed_total=ended.total,
        verdict=VerdictRuling.NOT_REVIEWED.value,
        reviewed_result="not reviewed",
        session_id=session_id,
        capture_id=-1 if prepared is None else prepared.capture_id,
        started_at="" if prepared is None else prepared.prepared_at,
        evidence=evidence_link(session_id, public_url, evidence_url),
    )
    return {"event": "session.ended", **row.as_dict()}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
