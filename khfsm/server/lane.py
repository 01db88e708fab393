"""One session of one lane, from prepare to its final push: the template every task follows.

`Lane.run` is the whole life of a lane, written once:

1. wait until the session is started (or stopped before it started);
2. the task's own work (`work`: the exercise pipeline, the face check);
3. a failure of that work ends the session with the status `failure` gives (−5 by default);
4. a stop or shutdown that interrupted the work ends the session as the operator asked;
5. shielded from cancellation: the evidence is sealed (`seal_evidence`), the session's events
   are made durable, and only then is the final push sent (its words from `outcome`).

The lane's own phase (`Phase`) says only what the session's state machine cannot: whether a
stop or a shutdown is under way and whether the final push has gone out. The session's state
(prepared, running, stopped, violated) stays the one in `Session`.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import anyio

from khfsm.domain.codes import EndStatus
from khfsm.domain.errors import DomainError
from khfsm.domain.events import (
    Event,
    RepCounted,
    SessionEnded,
    SessionStarted,
    SourceFailed,
    StopRequested,
)
from khfsm.domain.machine import State
from khfsm.domain.readiness import ReadinessReport
from khfsm.domain.session import Session
from khfsm.server.context import LaneContext
from khfsm.server.protocol import Request
from khfsm.server.push import Push
from khfsm.server.recording import Evidence

log = logging.getLogger(__name__)

LaneKey = tuple[str, int]  # (task, capture id): see `khfsm.server.lanes`
STOP_ACK_WAIT_S = 3.0  # a stop is answered once the lane has finished, or after this long
SHUTDOWN_MESSAGE = EndStatus.SERVER_SHUTDOWN.message
INTERNAL_ERROR_MESSAGE = "internal error in the server; see the server log"


class Reply(Protocol):
    """Answers one request, once: `error` empty for ok, `extra` fields for the answer."""

    def __call__(self, error: str = "", **extra: Any) -> None: ...


class Phase(StrEnum):
    ACTIVE = "active"  # prepared or running, as the session's state says
    STOPPING = "stopping"  # the operator asked to stop: the work is being interrupted
    ABORTING = "aborting"  # the server is shutting down: the session ends with −6
    FINISHING = "finishing"  # the session has ended: evidence and events being sealed
    FINISHED = "finished"  # the final push has been sent


class Listener(Protocol):
    """Whoever follows a lane (a tablet connection, a `LaneHandle.progress` loop)."""

    @property
    def id(self) -> int: ...

    def __call__(self, push: Push) -> None:
        """Take `push` without waiting (a lane never waits for its listeners)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the final push reports: by default the end status and the session's counts."""

    status: tuple[int, ...]
    total: int
    count: int
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


def lane_name(task: str, capture_id: int) -> str:
    return f"{task} capture {capture_id}"


def end_message(status: EndStatus, message: str) -> str:
    """The final push's msg: the table's words, then the specific reason if any."""
    generic = status.message
    if not message or message == generic:
        return generic
    return f"{generic}: {message}"


class Lane(ABC):
    """One session of one lane. The registry starts `run` in the site's task group at
    prepare; requests (`start`, `stop`, `status`) come from other tasks."""

    def __init__(self, ctx: LaneContext, capture_id: int, session: Session) -> None:
        self.ctx = ctx
        self.capture_id = capture_id
        self.session = session
        self.session_id = uuid.uuid4().hex
        self.listeners: dict[int, Listener] = {}
        self.phase = Phase.ACTIVE
        self.final_push: Push | None = None  # once sent
        self._entered: dict[Phase, float] = {Phase.ACTIVE: time.monotonic()}
        self._finished = anyio.Event()
        self._wake = anyio.Event()  # started, or asked to stop
        self._work_scope: anyio.CancelScope | None = None
        # What the camera showed at prepare (and start), for the acks; None when the task
        # reports no readiness (the face check) or it could not be looked at.
        self.readiness: ReadinessReport | None = None

    @property
    def task_name(self) -> str:
        """The tablet's Task, e.g. "pushup" (`session.task` is the task itself)."""
        return self.session.task.task

    @property
    def key(self) -> LaneKey:
        return (self.task_name, self.capture_id)

    @property
    def who(self) -> str:
        return lane_name(self.task_name, self.capture_id)

    @property
    def label(self) -> str:
        return f"lane {self.task_name}/{self.capture_id} session {self.session_id[:12]}"

    @property
    def session_over(self) -> bool:
        """The session has ended (its final push may still be on its way)."""
        return self.session.machine.ended

    async def finished(self) -> None:
        """Wait until the final push has been sent."""
        await self._finished.wait()

    # -- what each kind of task supplies ------------------------------------------------------

    @abstractmethod
    async def work(self) -> None:
        """The task's own work, once the session runs; ends the session unless interrupted."""

    async def before_start_reply(self) -> None:
        """Work a started session does before its start is acknowledged (nothing by default;
        an exercise lane looks at the camera again)."""
        return None

    def on_start(self, request: Request | None, reply: Reply) -> None:
        """The session has just started: answer `reply` (now, or later from `work`)."""
        log.info("%s: started", self.label)
        reply()

    def interrupt_work(self) -> None:
        """Make `work` return soon: a stop or a shutdown. By default it is cancelled."""
        if self._work_scope is not None:
            self._work_scope.cancel()

    def failure(self, error: Exception) -> tuple[EndStatus, str]:
        """The end status and message for an error that escaped `work`."""
        log.exception("%s: internal error; the test ends with status -5", self.label)
        return EndStatus.INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE

    async def seal_evidence(self) -> Evidence | None:
        """Close and hash the session's evidence (a video), if it has any."""
        return None

    def before_final_push(self) -> None:
        """Last words before the final push (the face check answers its start here)."""
        return None

    def outcome(self, sealed: SessionEnded) -> Outcome:
        status = EndStatus(sealed.status)
        return Outcome(
            (sealed.status,), sealed.total, sealed.count, end_message(status, sealed.message)
        )

    def release(self) -> None:
        """Give back what the lane held in shared services (always called, last)."""
        return None

    def figures(self) -> dict[str, float | int | str]:
        """Live figures for /healthz (the exercise pipeline's throughput and latency)."""
        return {}

    def readiness_fields(self) -> dict[str, Any]:
        """The ack's `readiness` field, when the lane has a report (extra keys in an ack are
        ignored by the tablet)."""
        return {} if self.readiness is None else {"readiness": self.readiness.as_ack()}

    # -- requests ---------------------------------------------------------------------------

    async def start(self, request: Request | None, reply: Reply) -> None:
        """Start the session; an illegal start is answered with the operator's message and
        changes nothing. `request` carries the task's start options, if it has any."""
        try:
            events = self.session.start(
                SessionStarted(started_at=datetime.now(UTC).isoformat(timespec="milliseconds"))
            )
        except DomainError as error:
            reply(str(error))
            return
        self.apply(events)
        await self.before_start_reply()
        self.on_start(request, reply)
        self._wake.set()

    async def stop(self, reply: Reply) -> None:
        """Idempotent: a stop of an ended (or stopping) session is answered ok."""
        if self._interrupt(Phase.STOPPING):
            log.info("%s: stop requested", self.label)
        # The answer follows the final push, as the original server ordered them.
        with anyio.move_on_after(STOP_ACK_WAIT_S):
            await self._finished.wait()
        reply()

    def abort(self) -> None:
        """End the session with status −6: the server is shutting down."""
        self._interrupt(Phase.ABORTING)

    def _interrupt(self, phase: Phase) -> bool:
        if self.session_over or self.phase is not Phase.ACTIVE:
            return False
        self._enter(phase)
        self._wake.set()
        self.interrupt_work()
        return True

    def _enter(self, phase: Phase) -> None:
        self.phase = phase
        self._entered[phase] = time.monotonic()

    def status(self) -> Push:
        """The current progress, for the `status` op: the final push once there is one."""
        if self.final_push is not None:
            return self.final_push
        state = self.session.state
        progress = self.session.progress
        fps = self.session.prepared.fps if self.session.prepared else 0.0
        seconds = progress.frames / fps if fps else 0.0
        return self._push(
            (),
            progress.total,
            progress.count,
            (0.0, seconds),
            state.value,
            details={"state": state.value, "frames": progress.frames},
        )

    # -- listeners --------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self.listeners[listener.id] = listener

    def unsubscribe(self, listener_id: int) -> None:
        self.listeners.pop(listener_id, None)

    def broadcast(self, push: Push) -> None:
        for listener in list(self.listeners.values()):
            listener(push)

    def _push(
        self,
        status: tuple[int, ...],
        total: int,
        count: int,
        span: tuple[float, float],
        message: str,
        *,
        final: bool = False,
        details: Mapping[str, Any] | None = None,
    ) -> Push:
        return Push(
            status=status,
            total=total,
            count=count,
            time=span,
            message=message,
            task=self.task_name,
            capture_id=self.capture_id,
            session=self.session_id,
            push_code=self.session.task.push_code,
            final=final,
            details=dict(details or {}),
        )

    # -- events -----------------------------------------------------------------------------

    def apply(self, events: list[Event]) -> None:
        """Store `events` and push reps. The session's `SessionEnded` is not stored here:
        `Session.end` holds it until the evidence is sealed into it."""
        ready: list[Event] = []
        pushes: list[Push] = []
        for event in events:
            if isinstance(event, SessionEnded):
                continue
            ready.append(event)
            if isinstance(event, RepCounted):
                pushes.append(self._push(event.status, event.total, event.count, event.time, ""))
        self.ctx.writer.submit(self.session_id, ready)
        # A rep is pushed once its events are on the local disk (the writer's spool, within
        # one tick): what the tablet was told survives a crash of the server.
        for push in pushes:
            self.ctx.writer.when_spooled(self.session_id, functools.partial(self.broadcast, push))

    def fail(self, status: EndStatus, message: str) -> None:
        """End the session (if it has not ended) with `status`."""
        if not self.session_over:
            failed = SourceFailed(
                frame=self.session.progress.frames, status=int(status), message=message
            )
            self.apply(self.session.fail(failed))

    def _end_interrupted(self) -> None:
        """`work` returned or never ran without ending the session: a stop or a shutdown."""
        if self.session_over:
            return
        if self.phase is Phase.ABORTING:
            self.fail(EndStatus.SERVER_SHUTDOWN, SHUTDOWN_MESSAGE)
        else:
            self.apply(self.session.request_stop(StopRequested(frame=self.session.progress.frames)))

    # -- the template -----------------------------------------------------------------------

    async def _wait_for_start(self) -> None:
        """Until started or stopped; a session prepared and never started ends (as stopped)
        after `prepared_timeout_s`, so abandoned prepares do not hold the site's lanes."""
        limit = self.ctx.settings.prepared_timeout_s
        with anyio.move_on_after(limit) as waiting:
            await self._wake.wait()
        if waiting.cancelled_caught and self._interrupt(Phase.STOPPING):
            log.info(
                "%s: not started within %g s (setting prepared_timeout_s); it ends as stopped",
                self.label,
                limit,
            )

    async def run(self) -> None:
        try:
            await self._wait_for_start()
            if self.session.state is State.RUNNING and self.phase is Phase.ACTIVE:
                with anyio.CancelScope() as self._work_scope:
                    await self.work()
            self._end_interrupted()
        except Exception as error:
            self.fail(*self.failure(error))
        finally:
            with anyio.CancelScope(shield=True):
                await self._finish()

    async def _finish(self) -> None:
        self._enter(Phase.FINISHING)
        try:
            evidence = await self.seal_evidence()
        except Exception:
            log.exception("%s: the evidence could not be sealed", self.label)
            evidence = None
        try:
            self.before_final_push()
            await self._seal_and_push(evidence)
        except Exception:
            log.exception("%s: could not finish the session", self.label)
        finally:
            self.release()
            self._enter(Phase.FINISHED)
            self._finished.set()

    async def _seal_and_push(self, evidence: Evidence | None) -> None:
        """Store the sealed end durably, then send the final push (exactly once)."""
        ended = self.session.end
        if ended is None:  # pragma: no cover - run() ends the session first
            raise RuntimeError(f"{self.label} has not ended")
        sha256, size = (evidence.sha256, evidence.size) if evidence else (None, None)
        sealed = ended.sealed(sha256, size)
        self.ctx.writer.submit(self.session_id, [sealed])
        note = ""
        try:
            await self.ctx.writer.flush(self.session_id)
        except Exception as error:  # StoreError, or anything the store raised
            log.error("%s: the session's events are not durable: %s", self.label, error)
            note = "; WARNING: the result could not be saved, tell the administrator"
        outcome = self.outcome(sealed)
        self.final_push = self._push(
            outcome.status,
            outcome.total,
            outcome.count,
            (0.0, 0.0),
            outcome.message + note,
            final=True,
            details={"frames": sealed.frames, **outcome.details},
        )
        self.broadcast(self.final_push)
        self._log_end(sealed, sha256, size)

    def _log_end(self, sealed: SessionEnded, sha256: str | None, size: int | None) -> None:
        latency = ""
        stopped_at = self._entered.get(Phase.STOPPING)
        if stopped_at is not None:
            latency = f", {1000 * (time.monotonic() - stopped_at):.0f} ms after stop"
        log.info(
            "%s: ended with status %d (%s): %d frames, count %d of %d, video %s%s",
            self.label,
            sealed.status,
            sealed.message,
            sealed.frames,
            sealed.count,
            sealed.total,
            f"{size} bytes sha256 {sha256[:12]}" if sha256 and size is not None else "none",
            latency,
        )
