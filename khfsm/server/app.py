"""The ASGI application: the tablets' WebSocket endpoint (at any path) and /healthz.

A thin adapter over `khfsm.site.Site`: the lifespan opens the site (store, models, the event
writer, the batching pose service, the event-loop monitor, and later every lane, in one task
group); each WebSocket connection drives the site's lanes through the tablet protocol. On
shutdown running lanes end with status −5 ("the server shut down during the test"), their
events are made durable, then the group is cancelled.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import khfsm
from khfsm.server.connection import TabletConnection
from khfsm.server.lane import Lane
from khfsm.settings import Settings
from khfsm.site import Site

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with Site(settings) as site:
            app.state.site = site
            # A dead core task (see `Site.failure`): ask whoever serves the app to stop, so
            # that the process exits non-zero and its supervisor restarts it.
            site.on_failure(lambda reason: request_exit(app))
            yield

    return Starlette(
        routes=[
            Route("/healthz", health),
            WebSocketRoute("/{path:path}", tablet),  # the tablets' configured path is unknown
        ],
        lifespan=lifespan,
    )


def request_exit(app: Starlette) -> None:
    """Call the `exit_server` callback the server runner set on `app.state`, if any."""
    exit_server = getattr(app.state, "exit_server", None)
    if exit_server is not None:
        exit_server()


def site_of(app: Starlette) -> Site:
    site: Site = app.state.site
    return site


async def tablet(websocket: WebSocket) -> None:
    await TabletConnection(websocket, site_of(websocket.app).registry).serve()


async def health(request: Request) -> JSONResponse:
    site = site_of(request.app)
    window = request.query_params.get("lag_window")
    try:
        lag_window = float(window) if window else None
    except ValueError:
        lag_window = None
    store: dict[str, Any] = {"url": site.database, "reachable": False}
    with anyio.move_on_after(3.0):
        try:
            store["sessions"] = await anyio.to_thread.run_sync(
                site.recorder.count_sessions, abandon_on_cancel=True
            )
            store["reachable"] = True
        except Exception as error:  # the store's own errors say what is wrong
            store["error"] = str(error)
    store["pending_events"] = site.writer.pending_events
    store["spool"] = site.writer.spooling
    lanes = [lane_info(lane) for lane in site.registry.lanes.values()]
    healthy = store["reachable"] and site.failure is None
    body = {
        "status": "failed" if site.failure else "ok" if healthy else "degraded",
        "version": khfsm.__version__,
        "lanes": site.registry.counts(),
        "lane_list": lanes,
        "store": store,
        "inference": {
            "provider": site.provider,
            "batches": site.pose.batches_run,
            "frames": site.pose.frames_run,
        },
        "event_loop_lag_ms": site.monitor.lag_ms(lag_window),
        "media_root": str(site.media.root),
    }
    if site.failure:
        body["failure"] = site.failure
    return JSONResponse(body, status_code=200 if healthy else 503)


def lane_info(lane: Lane) -> dict[str, Any]:
    progress = lane.session.progress
    info: dict[str, Any] = {
        "task": lane.task_name,
        "capture_id": lane.capture_id,
        "session": lane.session_id,
        "state": lane.session.state.value,
        "frames": progress.frames,
        "count": progress.count,
        "total": progress.total,
        "subscribers": len(lane.listeners),
    }
    info.update(lane.figures())
    return info
