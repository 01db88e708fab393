"""One tablet's WebSocket connection: read requests, answer each with one ack, deliver pushes.

Each request is handled in its own task (at most `MAX_IN_FLIGHT` at once), so a lane whose
camera is slow to open does not hold up the tablet's other lanes; the lane registry keeps
requests for one lane in order. A sender task drains the connection's `Outbox`. When the
tablet goes away its lanes keep running; it can reconnect and ask for `status`.
"""

from __future__ import annotations

import itertools
import logging
from enum import IntEnum
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from khfsm.registry import get_exercise
from khfsm.server import protocol
from khfsm.server.lanes import LaneRegistry, Subscriber
from khfsm.server.outbox import Outbox
from khfsm.server.protocol import Framing, Incoming, RequestError

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 16
_ids = itertools.count(1)


class CloseCode(IntEnum):
    """WebSocket close codes this server sends (RFC 6455 §7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # the server is shutting down


class TabletConnection:
    def __init__(self, websocket: WebSocket, registry: LaneRegistry) -> None:
        self.websocket = websocket
        self.registry = registry
        self.id = next(_ids)
        self.outbox = Outbox()
        self.subscriber = Subscriber(self.id, self.outbox)
        client = websocket.client
        self.peer = f"{client.host}:{client.port}" if client else "unknown"

    async def serve(self) -> None:
        await self.websocket.accept()
        log.info("tablet %d connected from %s", self.id, self.peer)
        slots = anyio.Semaphore(MAX_IN_FLIGHT)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._send_loop, tg.cancel_scope)
                await self._receive_loop(tg, slots)
                tg.cancel_scope.cancel()
        finally:
            self.registry.disconnect(self.id)
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
            await slots.acquire()
            tg.start_soon(self._handle, text, slots)

    async def _send_loop(self, scope: anyio.CancelScope) -> None:
        try:
            while True:
                text = await self.outbox.get()
                await self.websocket.send_text(text)
        except (anyio.EndOfStream, WebSocketDisconnect, RuntimeError, OSError):
            scope.cancel()  # the tablet is gone: stop reading too

    async def _handle(self, text: str, slots: anyio.Semaphore) -> None:
        try:
            await self._handle_text(text)
        except Exception:
            # Never a traceback to the tablet: it gets a plain error ack, the log the details.
            log.exception("tablet %d: internal error handling %.200r", self.id, text)
            self._reply_error(Framing(), None, None, None, "internal error in the server")
        finally:
            slots.release()

    async def _handle_text(self, text: str) -> None:
        try:
            incoming = protocol.split_frame(text)
        except protocol.FrameError as error:
            self._reply_error(error.framing, None, None, None, str(error))
            return
        capture_id, task, op = incoming.echo()
        try:
            request = protocol.parse_request(incoming, check_task=get_exercise)
        except RequestError as error:
            self._reply_error(incoming.framing, capture_id, task, op, str(error))
            return
        self.subscriber.framing = incoming.framing
        replied = False

        def reply(error: str = "", **extra: Any) -> None:
            nonlocal replied
            if replied:
                return
            replied = True
            body = protocol.ack(op, request.Task, request.CaptureID, error, **extra)
            self.outbox.put(protocol.encode_ack(body, incoming.framing))

        await self.registry.handle(request, self.subscriber, reply)

    def _reply_error(
        self, framing: Framing, capture_id: Any, task: Any, op: Any, error: str
    ) -> None:
        log.info("tablet %d: refused request: %s", self.id, error)
        body = protocol.ack(op, task, capture_id, error)
        self.outbox.put(protocol.encode_ack(body, framing))

    async def close(self, code: CloseCode = CloseCode.GOING_AWAY) -> None:
        if self.websocket.application_state is WebSocketState.CONNECTED:
            await self.websocket.close(code)


__all__ = ["CloseCode", "Incoming", "TabletConnection"]
