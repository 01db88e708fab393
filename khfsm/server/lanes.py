"""The lanes of a site: who is running what, and the per-lane order of requests.

A lane is keyed by **(Task, CaptureID)**: the tablets always send both, the pushes carry
both, and keying by the pair means that a stop for ``pushup 2`` can never stop a
``FaceDetection 2`` check of the next candidate that shares the lane number. Each `prepare`
creates a new session (with a new id) for its key; a prepare while the key's session is
prepared or running is refused with the state machine's own message. An ended session stays
in the registry until the next prepare of its key, so that `status` can re-send its final
push to a tablet that reconnects.

Requests for one key are carried out in arrival order (a lock per key), requests for
different keys concurrently, so a slow camera on one lane does not hold up the others. The
registry knows no kind of task: the site gives it a task -> `LaneKind` map (built by
`khfsm.server.kinds`), and each kind's prepare function builds its own kind of lane.

The registry also keeps the site's limits (`khfsm.server.limits`: lanes per server and per
connection, Duration, Fps) and, when the site asks for it, lane ownership
(`khfsm.server.authority`): it remembers which connection prepared each lane. Once shutdown
has begun it prepares nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio

from khfsm.domain.errors import DomainError
from khfsm.domain.machine import State, Trigger, refusal
from khfsm.server import limits
from khfsm.server.authority import Caller, check_owner
from khfsm.server.context import LaneContext
from khfsm.server.lane import Lane, LaneKey, Listener, Phase, Reply, lane_name
from khfsm.server.paths import PathRefused
from khfsm.server.protocol import Request, RequestError

log = logging.getLogger(__name__)
KEPT_ENDED = 1024  # ended lanes remembered for `status`; the oldest are forgotten first


class Recordings(Protocol):
    """What a prepare may ask of the other lanes."""

    def recorded_by(self, video: Path) -> str | None:
        """The unfinished lane recording `video`, if any (in words)."""


# Builds a prepared lane for one prepare request, or raises with the operator's message.
Prepare = Callable[[LaneContext, Request, Recordings], Awaitable[Lane]]


@dataclass(frozen=True, slots=True)
class LaneKind:
    """How the server serves one task: the requests it takes and how its lane is prepared."""

    prepare_request: type[Request]
    start_request: type[Request]
    prepare: Prepare


class LaneRegistry:
    """Every lane of the site, and the requests that drive them."""

    def __init__(self, ctx: LaneContext, kinds: Mapping[str, LaneKind]) -> None:
        self.ctx = ctx
        self.kinds = dict(kinds)
        self.lanes: dict[LaneKey, Lane] = {}
        self._locks: dict[LaneKey, anyio.Lock] = {}
        self._owners: dict[LaneKey, int | None] = {}  # the connection that prepared each lane
        self.closing = False  # shutdown has begun: no new lanes

    def counts(self) -> dict[str, int]:
        tally = {state.value: 0 for state in State}
        for lane in self.lanes.values():
            tally[lane.session.state.value] += 1
        return tally

    def kind(self, task: str) -> LaneKind:
        """How `task` is served; `RequestError` naming the served tasks if it is not."""
        kind = self.kinds.get(task)
        if kind is None:
            known = ", ".join(sorted(self.kinds)) or "none installed"
            raise RequestError(f"unknown Task {task!r}; this server knows: {known}")
        return kind

    def _lock(self, key: LaneKey, *, create: bool = False) -> anyio.Lock:
        """The key's lock. Only a prepare keeps one: a request for a key with no lane gets a
        throwaway lock, so requests naming millions of lanes leave nothing behind."""
        lock = self._locks.get(key)
        if lock is None:
            lock = anyio.Lock()
            if create:
                self._locks[key] = lock
        return lock

    def _forget_ended(self) -> None:
        """Keep at most `KEPT_ENDED` ended lanes (for `status` after a reconnect): a client
        preparing and stopping lane after lane must not grow the registry without end."""
        ended = [key for key, lane in self.lanes.items() if lane.phase is Phase.FINISHED]
        for key in ended[: max(0, len(ended) - KEPT_ENDED)]:
            lock = self._locks.get(key)
            if lock is not None and lock.locked():
                continue
            del self.lanes[key]
            self._owners.pop(key, None)
            self._locks.pop(key, None)

    # -- requests ---------------------------------------------------------------------------

    def open_lanes(self, connection: int | None = None) -> int:
        """Lanes prepared or running (of one connection, if given)."""
        return sum(
            1
            for key, lane in self.lanes.items()
            if not lane.session_over and (connection is None or self._owners.get(key) == connection)
        )

    async def prepare(
        self, request: Request, listener: Listener | None = None, caller: Caller | None = None
    ) -> Lane:
        """A new session for the request's lane, its run task started."""
        try:
            return await self._prepare(request, listener, caller)
        except (RequestError, DomainError, PathRefused) as error:
            # The operator reads it in the ack; the site's log keeps one line of it too.
            log.info("%s: prepare refused: %s", lane_name(request.Task, request.CaptureID), error)
            raise

    async def _prepare(
        self, request: Request, listener: Listener | None, caller: Caller | None
    ) -> Lane:
        if self.closing:
            raise RequestError(
                "the server is shutting down; prepare the test again once it is back"
            )
        settings = self.ctx.settings
        limits.check_request(request, settings)
        key = (request.Task, request.CaptureID)
        async with self._lock(key, create=True):
            lane = self.lanes.get(key)
            if lane is not None and not lane.session_over:
                raise RequestError(refusal(Trigger.PREPARE, lane.session.state, lane_name(*key)))
            here = None if caller is None else self.open_lanes(caller.connection)
            limits.check_lane_room(self.open_lanes(), here, settings)
            new = await self.kind(request.Task).prepare(self.ctx, request, self)
            if self.closing:  # shutdown began while the camera was being opened
                new.abort()
                self.ctx.task_group.start_soon(new.run, name=f"lane {key[0]}/{key[1]}")
                raise RequestError("the server is shutting down; prepare the test again later")
            if listener is not None:
                new.subscribe(listener)
            self._forget_ended()
            self.lanes[key] = new
            self._owners[key] = None if caller is None else caller.connection
            self.ctx.task_group.start_soon(new.run, name=f"lane {key[0]}/{key[1]}")
            return new

    async def start(
        self,
        key: LaneKey,
        request: Request | None,
        reply: Reply,
        listener: Listener | None = None,
        caller: Caller | None = None,
    ) -> None:
        if request is not None:
            limits.check_request(request, self.ctx.settings)
        async with self._lock(key):
            self._check_owner(key, caller)
            lane = self._get(key, Trigger.START, listener)
            await lane.start(request, reply)

    async def stop(
        self,
        key: LaneKey,
        reply: Reply,
        listener: Listener | None = None,
        caller: Caller | None = None,
    ) -> None:
        async with self._lock(key):
            self._check_owner(key, caller)
            lane = self._get(key, Trigger.STOP, listener)
            await lane.stop(reply)

    def _check_owner(self, key: LaneKey, caller: Caller | None) -> None:
        if key in self.lanes:
            check_owner(self._owners.get(key), caller, lane_name(*key), self.ctx.settings)

    async def lane(self, key: LaneKey, listener: Listener | None = None) -> Lane:
        """The key's current lane (for its status), once earlier requests are done."""
        async with self._lock(key):
            if key not in self.lanes:
                raise RequestError(f"{lane_name(*key)} has no session; send prepare first")
            return self._get(key, Trigger.START, listener)

    def _get(self, key: LaneKey, trigger: Trigger, listener: Listener | None) -> Lane:
        lane = self.lanes.get(key)
        if lane is None:
            raise RequestError(refusal(trigger, State.IDLE, lane_name(*key)))
        if listener is not None:
            lane.subscribe(listener)
        return lane

    def recorded_by(self, video: Path) -> str | None:
        wanted = str(video)
        for lane in self.lanes.values():
            prepared = lane.session.prepared
            if not lane.session_over and prepared is not None and prepared.video_path == wanted:
                return lane.who
        return None

    # -- connections and shutdown -----------------------------------------------------------

    def unsubscribe(self, listener_id: int) -> None:
        for lane in self.lanes.values():
            lane.unsubscribe(listener_id)

    async def shutdown(self, wait_s: float) -> None:
        """End every unfinished lane (status −6) and wait for their final pushes."""
        self.closing = True
        unfinished = [lane for lane in self.lanes.values() if lane.phase is not Phase.FINISHED]
        for lane in unfinished:
            lane.abort()
        with anyio.move_on_after(wait_s):
            for lane in unfinished:
                await lane.finished()
