"""An orderly stop (SIGTERM): lanes end and tell their tablets before the sockets close.

uvicorn, left to itself, closes every WebSocket (code 1012) as soon as it is asked to stop
and only then shuts the application down, so the tablets never hear how their tests ended.
`GracefulServer` puts one step before that:

1. stop accepting connections;
2. end every running lane with status −6 ("server shutting down") — its events are made
   durable and its terminal push is queued to its tablets (`LaneRegistry.shutdown`);
3. wait until every connection has sent what it has queued;
4. with a result webhook, wait until the results queued so far (the −6 endings among them)
   are delivered or given up;

all within ``shutdown_drain_s`` (setting, default 15 s); then uvicorn closes the
connections and the site as before. A second SIGTERM/Ctrl-C still forces the exit.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Awaitable, Callable

import anyio
import uvicorn

from khfsm.server.outbox import Outbox

log = logging.getLogger(__name__)


class OpenConnections:
    """The outboxes of the open tablet connections, to wait for their last frames."""

    def __init__(self) -> None:
        self._outboxes: dict[int, Outbox] = {}

    def add(self, connection_id: int, outbox: Outbox) -> None:
        self._outboxes[connection_id] = outbox

    def remove(self, connection_id: int) -> None:
        self._outboxes.pop(connection_id, None)

    def __len__(self) -> int:
        return len(self._outboxes)

    async def flushed(self) -> None:
        """Return once no open connection has a frame waiting to be sent."""
        for outbox in list(self._outboxes.values()):
            await outbox.emptied()


async def drain(
    end_lanes: Callable[[float], Awaitable[None]],
    connections: OpenConnections,
    wait_s: float,
    results_out: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """End the lanes, then let every connection send its queued frames and the result
    webhook (`results_out`, when there is one) post its queued results, within `wait_s`."""
    started = time.monotonic()
    with anyio.move_on_after(wait_s) as scope:
        await end_lanes(wait_s)
        await connections.flushed()
        # The frames have left the outboxes; give the sockets a moment to write them.
        await anyio.sleep(0.1)
        if results_out is not None:
            await results_out()
    took = time.monotonic() - started
    if scope.cancelled_caught:
        log.warning(
            "shutdown: lanes, pushes and results not all done within %.0f s; closing anyway "
            "(results not posted stay in `khfsm results`)",
            wait_s,
        )
    else:
        log.info("shutdown: lanes ended and their tablets told in %.2f s", took)


class GracefulServer(uvicorn.Server):
    """uvicorn's server with `before_close` run after it stops accepting connections and
    before it closes the open ones."""

    def __init__(self, config: uvicorn.Config, before_close: Callable[[], Awaitable[None]]):
        super().__init__(config)
        self._before_close = before_close

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        try:
            await self._before_close()
        except Exception:  # the shutdown itself must go on
            log.exception("shutdown: ending the lanes failed; closing the connections")
        await super().shutdown(sockets)
