"""One tablet's WebSocket connection: read requests, answer each with one ack, deliver pushes.

The WebSocket side of the site: it turns protocol requests into calls on the lane registry
(the same calls `khfsm.site` makes) and the lanes' `Push`es into wire frames.

Each request is handled in its own task (at most `MAX_IN_FLIGHT` at once), so a lane whose
camera is slow to open does not hold up the tablet's other lanes; the lane registry keeps
requests for one lane in order. A sender task drains the connection's `Outbox`. A
connection follows every lane it has sent a request for; pushes carry the task's push code
when its latest request carried a code (and use its separator). When the tablet goes away
its lanes keep running; it can reconnect and ask for `status`.

Hostile or broken clients get an error ack and keep their connection: frames over
``max_message_bytes``, binary frames, frames that are not JSON, lone surrogates, fields out
of range (`khfsm.server.protocol`), limits (`khfsm.server.limits`) and, when the site sets
them, the token and lane ownership (`khfsm.server.authority`). An unexpected error is an
"internal error" ack that still carries the request's CaptureID and Task; the log gets the
details with credentials masked (`khfsm.server.redaction`). A tablet that takes no frame for
``send_timeout_s`` is disconnected, so one that never reads holds bounded memory.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from khfsm.domain.errors import DomainError
from khfsm.server import limits, protocol
from khfsm.server.authority import (
    TOKEN_REQUIRED,
    Caller,
    is_operator,
    may_connect,
    origin_allowed,
)
from khfsm.server.drain import OpenConnections
from khfsm.server.lane import Reply
from khfsm.server.lanes import LaneRegistry
from khfsm.server.outbox import Outbox
from khfsm.server.paths import PathRefused
from khfsm.server.protocol import Framing, Incoming, Operation, Request, RequestError
from khfsm.server.push import Push
from khfsm.server.redaction import redact, shorten

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 16
_ids = itertools.count(1)


class CloseCode(IntEnum):
    """WebSocket close codes this server sends (RFC 6455 §7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # the server is shutting down
    POLICY_VIOLATION = 1008  # an Origin the site does not allow


@dataclass(eq=False)
class Subscriber:
    """One connection as a lane sees it: a listener that frames pushes for this tablet."""

    id: int
    outbox: Outbox
    framing: Framing = field(default_factory=Framing)

    def __call__(self, push: Push) -> None:
        # Progress pushes are cumulative, so a slow tablet may lose old ones; never the last.
        self.outbox.put(self.encode(push), droppable=not push.final)

    def encode(self, push: Push) -> str:
        return protocol.encode_push(protocol.push_body(push), self.framing, push.push_code)


class TabletConnection:
    def __init__(
        self,
        websocket: WebSocket,
        registry: LaneRegistry,
        connections: OpenConnections | None = None,
    ) -> None:
        self.websocket = websocket
        self.registry = registry
        self.settings = registry.ctx.settings
        self.connections = connections
        self.id = next(_ids)
        self.outbox = Outbox(max_pending=self.settings.max_outgoing_frames)
        self.subscriber = Subscriber(self.id, self.outbox)
        client = websocket.client
        self.peer = f"{client.host}:{client.port}" if client else "unknown"
        token = websocket.query_params.get("token")
        self.admitted = may_connect(token, self.settings)  # tablet_token (if one is set)
        self.operator = is_operator(token, self.settings)  # operator_token: any lane

    @property
    def caller(self) -> Caller:
        return Caller(self.id, operator=self.operator)

    async def serve(self) -> None:
        origin = self.websocket.headers.get("origin")
        if not origin_allowed(origin, self.settings):
            log.warning(
                "tablet from %s refused: Origin %s is not allowed (setting tablet_allowed_origins)",
                self.peer,
                shorten(redact(origin or ""), 100),
            )
            await self.websocket.close(CloseCode.POLICY_VIOLATION)  # before accept: HTTP 403
            return
        await self.websocket.accept()
        log.info("tablet %d connected from %s", self.id, self.peer)
        if self.connections is not None:
            self.connections.add(self.id, self.outbox)
        slots = anyio.Semaphore(MAX_IN_FLIGHT)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._send_loop, tg.cancel_scope)
                await self._receive_loop(tg, slots)
                tg.cancel_scope.cancel()
        finally:
            if self.connections is not None:
                self.connections.remove(self.id)
            self.registry.unsubscribe(self.id)
            self.outbox.close()
            log.info("tablet %d (%s) disconnected; its lanes keep running", self.id, self.peer)

    async def _receive_loop(self, tg: anyio.abc.TaskGroup, slots: anyio.Semaphore) -> None:
        while True:
            await self.outbox.wait_for_room()
            try:
                message = await self.websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self._reply_error(Framing(), None, None, None, "send text frames, not binary")
                continue
            try:
                limits.check_message_size(_size(text), self.settings)
            except RequestError as error:
                self._reply_error(Framing(), None, None, None, str(error))
                continue
            await slots.acquire()
            tg.start_soon(self._handle, text, slots)

    async def _send_loop(self, scope: anyio.CancelScope) -> None:
        timeout = self.settings.send_timeout_s
        try:
            while True:
                text = await self.outbox.get()
                with anyio.move_on_after(timeout) as sending:
                    await self.websocket.send_text(text)
                if sending.cancelled_caught:
                    log.warning(
                        "tablet %d (%s) took no frame for %g s (%d queued); disconnecting it "
                        "(setting send_timeout_s); its lanes keep running",
                        self.id,
                        self.peer,
                        timeout,
                        len(self.outbox),
                    )
                    scope.cancel()
                    return
        except (anyio.EndOfStream, WebSocketDisconnect, RuntimeError, OSError):
            scope.cancel()  # the tablet is gone: stop reading too

    async def _handle(self, text: str, slots: anyio.Semaphore) -> None:
        try:
            await self._handle_text(text)
        finally:
            slots.release()

    async def _handle_text(self, text: str) -> None:
        try:
            incoming = protocol.split_frame(text)
        except protocol.FrameError as error:
            self._reply_error(error.framing, None, None, None, str(error))
            return
        except Exception:
            self._internal_error(Framing(), None, None, None, text)
            return
        capture_id, task, op = incoming.echo()
        answered: list[bool] = []  # the request's one ack has gone out
        try:
            await self._handle_request(incoming, answered)
        except Exception:
            if answered:  # acked already: only the log hears of it
                log.exception("tablet %d: internal error after answering", self.id)
                return
            # Never a traceback to the tablet: a plain error ack that still says which lane,
            # the log the details (credentials masked).
            self._internal_error(incoming.framing, capture_id, task, op, text)

    async def _handle_request(self, incoming: Incoming, answered: list[bool]) -> None:
        capture_id, task, op = incoming.echo()
        presented = incoming.data.get("Token")
        if presented is not None:  # a Token field authenticates the rest of the connection
            self.admitted = self.admitted or may_connect(presented, self.settings)
            self.operator = self.operator or is_operator(presented, self.settings)
        if not self.admitted:
            self._reply_error(incoming.framing, capture_id, task, op, TOKEN_REQUIRED)
            return
        try:
            request = protocol.parse_request(incoming, self.registry.kind)
        except RequestError as error:
            self._reply_error(incoming.framing, capture_id, task, op, str(error))
            return
        self.subscriber.framing = incoming.framing

        def reply(error: str = "", **extra: Any) -> None:
            if answered:
                return
            answered.append(True)
            if error:
                log.info(
                    "tablet %d: refused %s: %s",
                    self.id,
                    request.Op.value,
                    shorten(redact(error), 300),
                )
            body = protocol.ack(op, request.Task, request.CaptureID, error, **extra)
            self.outbox.put(protocol.encode_ack(body, incoming.framing))

        try:
            await self._dispatch(request, reply)
        except (RequestError, DomainError, PathRefused) as error:
            reply(str(error))

    async def _dispatch(self, request: Request, reply: Reply) -> None:
        """Carry out `request`; `reply` is called exactly once with the ack's error or ok."""
        key = (request.Task, request.CaptureID)
        registry, subscriber = self.registry, self.subscriber
        caller = self.caller
        if request.Op is Operation.PREPARE:
            lane = await registry.prepare(request, subscriber, caller)
            reply(**lane.readiness_fields())
        elif request.Op is Operation.START:
            await registry.start(key, request, reply, subscriber, caller)
        elif request.Op is Operation.STOP:
            await registry.stop(key, reply, subscriber, caller)
        else:
            lane = await registry.lane(key, subscriber)
            reply()
            subscriber.outbox.put(subscriber.encode(lane.status()))

    def _reply_error(
        self, framing: Framing, capture_id: Any, task: Any, op: Any, error: str
    ) -> None:
        log.info("tablet %d: refused request: %s", self.id, shorten(redact(error), 300))
        body = protocol.ack(op, task, capture_id, error)
        self.outbox.put(protocol.encode_ack(body, framing))

    def _internal_error(
        self, framing: Framing, capture_id: Any, task: Any, op: Any, text: str
    ) -> None:
        log.exception("tablet %d: internal error handling %s", self.id, shorten(redact(text), 300))
        body = protocol.ack(op, task, capture_id, "internal error in the server")
        self.outbox.put(protocol.encode_ack(body, framing))

    async def close(self, code: CloseCode = CloseCode.GOING_AWAY) -> None:
        if self.websocket.application_state is WebSocketState.CONNECTED:
            await self.websocket.close(code)


def _size(text: str) -> int:
    """The frame's size in UTF-8 bytes (a lone surrogate counted as the 3 bytes it came as)."""
    if len(text) * 4 <= 1024:  # small: within any limit whatever its characters
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


__all__ = ["CloseCode", "Incoming", "TabletConnection"]
