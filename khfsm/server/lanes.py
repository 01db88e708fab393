"""The lanes of a site: who is running what, and the requests that drive them.

A lane is keyed by **(Task, CaptureID)**: the tablets always send both, the pushes carry
both, and keying by the pair means that a stop for ``pushup 2`` can never stop a
``FaceDetection 2`` check of the next candidate that shares the lane number. Each `prepare`
creates a new session (with a new id) for its key; a prepare while the key's session is
prepared or running is refused with the state machine's own message. An ended session stays
in the registry until the next prepare of its key, so that `status` can re-send its terminal
push to a tablet that reconnects.

Connections subscribe to a lane by sending any request for it; a lane pushes to every
subscribed connection and forgets a connection when it closes. Pushes carry the task's push
code when the connection's latest request carried a code (and use its separator). A tablet
that disconnects does not stop its lanes. Requests for one key are handled in arrival order
(a lock per key), requests for different keys concurrently, so a slow camera on one lane
does not hold up the tablet's other lanes.
"""

from __future__ import annotations

import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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
from khfsm.domain.face import TASK as FACE_TASK
from khfsm.domain.machine import State, Trigger, refusal
from khfsm.domain.session import Session
from khfsm.server import protocol
from khfsm.server.context import LaneContext
from khfsm.server.outbox import Outbox
from khfsm.server.paths import PathRefused
from khfsm.server.protocol import Framing, Operation, Request, RequestError

log = logging.getLogger(__name__)

LaneKey = tuple[str, int]
Reply = Callable[..., None]  # reply(error="", **extra): sends the request's ack once
STOP_ACK_WAIT_S = 3.0  # a stop is acknowledged once the lane has ended, or after this long


@dataclass(eq=False)
class Subscriber:
    """One connection as a lane sees it: where to push, and how to frame pushes."""

    id: int
    outbox: Outbox
    framing: Framing = field(default_factory=Framing)


class Lane(ABC):
    """One session of one lane, from prepare to its terminal push. The lane's `run` task
    (started in the server's task group at prepare) drives the session to its end."""

    def __init__(self, ctx: LaneContext, task: str, capture_id: int, session: Session) -> None:
        self.ctx = ctx
        self.task = task
        self.capture_id = capture_id
        self.session = session
        self.session_id = uuid.uuid4().hex
        self.subscribers: dict[int, Subscriber] = {}
        self.terminal: dict[str, Any] | None = None  # the terminal push, once sent
        self.done = anyio.Event()
        self.stop_requested = False
        self.stop_requested_at: float | None = None
        self.abort_reason = ""
        self._ended: SessionEnded | None = None

    @property
    def key(self) -> LaneKey:
        return (self.task, self.capture_id)

    @property
    def who(self) -> str:
        return lane_name(self.task, self.capture_id)

    @property
    def ended(self) -> bool:
        return self.session.machine.ended

    @property
    def label(self) -> str:
        return f"lane {self.task}/{self.capture_id} session {self.session_id[:12]}"

    # -- requests (called from connection tasks) ------------------------------------------

    @abstractmethod
    async def start(self, request: Request, reply: Reply) -> None: ...

    def begin(self, reply: Reply) -> bool:
        """Start the session and store `SessionStarted`; an illegal start is answered with
        the operator's message and changes nothing (then False)."""
        try:
            events = self.session.start(
                SessionStarted(started_at=datetime.now(UTC).isoformat(timespec="milliseconds"))
            )
        except DomainError as error:
            reply(str(error))
            return False
        self.apply(events)
        return True

    async def stop(self, reply: Reply) -> None:
        """Idempotent: a stop of an ended (or stopping) session is acknowledged as ok."""
        if not self.ended and not self.stop_requested:
            self.stop_requested = True
            self.stop_requested_at = time.monotonic()
            log.info("%s: stop requested", self.label)
            self._interrupt()
        # The ack follows the terminal push, as the original server ordered them.
        with anyio.move_on_after(STOP_ACK_WAIT_S):
            await self.done.wait()
        reply()

    def abort(self, reason: str) -> None:
        """End the session with status −5 (the server is shutting down)."""
        if not self.ended and not self.stop_requested:
            self.abort_reason = reason
            self.stop_requested = True
            self._interrupt()

    def end_interrupted(self) -> None:
        """The run task noticed a stop or abort: end the session accordingly."""
        if self.ended:
            return
        frame = self.session.progress.frames
        if self.abort_reason:
            self.apply(
                self.session.fail(
                    SourceFailed(
                        frame=frame, status=int(EndStatus.INTERNAL_ERROR), message=self.abort_reason
                    )
                )
            )
        else:
            self.apply(self.session.request_stop(StopRequested(frame=frame)))

    @abstractmethod
    def _interrupt(self) -> None:
        """Make the run task notice the stop request now."""

    @abstractmethod
    async def run(self) -> None: ...

    def status(self) -> dict[str, Any]:
        """The current progress, for the `status` op: the terminal push once ended."""
        if self.terminal is not None:
            return self.terminal
        state = self.session.state
        progress = self.session.progress
        fps = self.session.prepared.fps if self.session.prepared else 0.0
        seconds = progress.frames / fps if fps else 0.0
        return protocol.push(
            [],
            progress.total,
            progress.count,
            (0.0, seconds),
            state.value,
            capture_id=self.capture_id,
            task=self.task,
            session=self.session_id,
            state=state.value,
            frames=progress.frames,
        )

    # -- subscribers ----------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers[subscriber.id] = subscriber

    def unsubscribe(self, connection_id: int) -> None:
        self.subscribers.pop(connection_id, None)

    def broadcast(self, body: dict[str, Any], *, terminal: bool = False) -> None:
        for subscriber in list(self.subscribers.values()):
            subscriber.outbox.put(
                protocol.encode_push(body, subscriber.framing), droppable=not terminal
            )

    # -- events ---------------------------------------------------------------------------

    def apply(self, events: list[Event]) -> None:
        """Store `events` and push reps; a SessionEnded is held back to be sealed."""
        ready: list[Event] = []
        for event in events:
            if isinstance(event, SessionEnded):
                self._ended = event
                continue
            ready.append(event)
            if isinstance(event, RepCounted):
                self.on_rep(event)
        self.ctx.writer.submit(self.session_id, ready)

    def on_rep(self, rep: RepCounted) -> None:
        self.broadcast(
            protocol.push(
                rep.status,
                rep.total,
                rep.count,
                rep.time,
                "",
                capture_id=self.capture_id,
                task=self.task,
                session=self.session_id,
            )
        )

    async def seal_and_push(
        self,
        sha256: str | None,
        size: int | None,
        push_status: list[int] | None = None,
        msg: str | None = None,
        counts: tuple[int, int] | None = None,
        **extra: Any,
    ) -> None:
        """Store the sealed end durably, then send the terminal push (exactly once).

        `push_status`, `msg` and `counts` (total, count) override what the push reports
        (the face check reports its outcome code rather than the end status)."""
        ended = self._ended or self.session.end
        if ended is None:  # pragma: no cover - callers end the session first
            raise RuntimeError(f"{self.label} has not ended")
        sealed = ended.sealed(sha256, size)
        self.ctx.writer.submit(self.session_id, [sealed])
        note = ""
        try:
            await self.ctx.writer.flush(self.session_id)
        except Exception as error:  # StoreError, or anything the store raised
            log.error("%s: the session's events are not durable: %s", self.label, error)
            note = "; WARNING: the result could not be saved, tell the administrator"
        status = EndStatus(sealed.status)
        text = msg if msg is not None else end_message(status, sealed.message)
        self.terminal = protocol.push(
            push_status if push_status is not None else [sealed.status],
            counts[0] if counts else sealed.total,
            counts[1] if counts else sealed.count,
            (0.0, 0.0),
            text + note,
            capture_id=self.capture_id,
            task=self.task,
            session=self.session_id,
            frames=sealed.frames,
            **extra,
        )
        self.broadcast(self.terminal, terminal=True)
        latency = ""
        if self.stop_requested_at is not None:
            latency = f", {1000 * (time.monotonic() - self.stop_requested_at):.0f} ms after stop"
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


def lane_name(task: str, capture_id: int) -> str:
    return f"{task} capture {capture_id}"


def end_message(status: EndStatus, message: str) -> str:
    """The terminal push's msg: the table's words, then the specific reason if any."""
    generic = status.message
    if not message or message == generic:
        return generic
    return f"{generic}: {message}"


class LaneRegistry:
    """Every lane of the server, and the dispatch of validated requests to them."""

    def __init__(self, ctx: LaneContext) -> None:
        self.ctx = ctx
        self.lanes: dict[LaneKey, Lane] = {}
        self._locks: dict[LaneKey, anyio.Lock] = {}

    def counts(self) -> dict[str, int]:
        tally = {state.value: 0 for state in State}
        for lane in self.lanes.values():
            tally[lane.session.state.value] += 1
        return tally

    async def shutdown(self, wait_s: float) -> None:
        """End every unfinished lane (status −5) and wait for their terminal pushes."""
        unfinished = [lane for lane in self.lanes.values() if not lane.done.is_set()]
        for lane in unfinished:
            lane.abort("the server shut down during the test")
        with anyio.move_on_after(wait_s):
            for lane in unfinished:
                await lane.done.wait()

    def disconnect(self, connection_id: int) -> None:
        for lane in self.lanes.values():
            lane.unsubscribe(connection_id)

    async def handle(self, request: Request, subscriber: Subscriber, reply: Reply) -> None:
        """Carry out `request`; `reply` is called exactly once with the ack's error or ok."""
        key = (request.Task, request.CaptureID)
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            try:
                await self._dispatch(key, request, subscriber, reply)
            except (RequestError, DomainError, PathRefused) as error:
                reply(str(error))

    async def _dispatch(
        self, key: LaneKey, request: Request, subscriber: Subscriber, reply: Reply
    ) -> None:
        lane = self.lanes.get(key)
        who = lane_name(*key)
        if request.Op is Operation.PREPARE:
            if lane is not None and not lane.ended:
                raise RequestError(refusal(Trigger.PREPARE, lane.session.state, who))
            new = await self._create(request)
            new.subscribe(subscriber)
            self.lanes[key] = new
            self.ctx.task_group.start_soon(new.run, name=f"lane {key[0]}/{key[1]}")
            reply()
            return
        if lane is None:
            trigger = Trigger.STOP if request.Op is Operation.STOP else Trigger.START
            if request.Op is Operation.STATUS:
                raise RequestError(f"{who} has no session; send prepare first")
            raise RequestError(refusal(trigger, State.IDLE, who))
        lane.subscribe(subscriber)
        if request.Op is Operation.START:
            await lane.start(request, reply)
        elif request.Op is Operation.STOP:
            await lane.stop(reply)
        else:
            reply()
            subscriber.outbox.put(protocol.encode_push(lane.status(), subscriber.framing))

    async def _create(self, request: Request) -> Lane:
        # Imported here: each kind of lane pulls in its own heavy dependencies.
        if request.Task == FACE_TASK:
            from khfsm.server.face import FaceLane, prepare_face

            assert isinstance(request, protocol.FacePrepare)
            lane: Lane = await prepare_face(self.ctx, request)
            assert isinstance(lane, FaceLane)
            return lane
        from khfsm.server.pipeline import prepare_exercise

        assert isinstance(request, protocol.ExercisePrepare)
        self._check_video_free(request)
        return await prepare_exercise(self.ctx, request)

    def _check_video_free(self, request: protocol.ExercisePrepare) -> None:
        wanted = str(self.ctx.media.resolve(request.ModelPath, "ModelPath"))
        for lane in self.lanes.values():
            prepared = lane.session.prepared
            if not lane.ended and prepared is not None and prepared.video_path == wanted:
                raise RequestError(
                    f"ModelPath {request.ModelPath} is being recorded by {lane.who}; "
                    "each test needs its own video file"
                )
