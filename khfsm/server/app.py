"""The ASGI application: the tablets' WebSocket endpoint (at any path) and /healthz.

A thin adapter over `khfsm.site.Site`: the lifespan opens the site (store, models, the event
writer, the batching pose service, the event-loop monitor, and later every lane, in one task
group); each WebSocket connection drives the site's lanes through the tablet protocol. On
shutdown (`serve`, `khfsm.server.drain`) running lanes end with status −6 ("server shutting
down") and their terminal pushes reach the tablets before the connections close; their
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
from khfsm.server import limits
from khfsm.server.connection import TabletConnection
from khfsm.server.drain import GracefulServer, OpenConnections, drain
from khfsm.server.lane import Lane
from khfsm.settings import Settings
from khfsm.site import Site

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with Site(settings) as site:
            app.state.site = site
            yield

    app = Starlette(
        routes=[
            Route("/healthz", health),
            WebSocketRoute("/{path:path}", tablet),  # the tablets' configured path is unknown
        ],
        lifespan=lifespan,
    )
    app.state.connections = OpenConnections()
    return app


def uvicorn_server(app: Starlette, settings: Settings, **options: Any) -> GracefulServer:
    """The uvicorn server `khfsm serve` runs (tests run the same): the socket's size limit
    and ping from `settings`, and the orderly SIGTERM of `khfsm.server.drain`."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_interval,
        ws_max_size=limits.ws_max_size(settings),
        log_config=None,  # keep our logging configuration
        timeout_graceful_shutdown=20,
        **options,
    )

    async def before_close() -> None:
        site = getattr(app.state, "site", None)
        if site is not None:
            await drain(site.registry.shutdown, app.state.connections, settings.shutdown_drain_s)

    return GracefulServer(config, before_close)


def site_of(app: Starlette) -> Site:
    site: Site = app.state.site
    return site


async def tablet(websocket: WebSocket) -> None:
    app = websocket.app
    await TabletConnection(websocket, site_of(app).registry, app.state.connections).serve()


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
    lanes = [lane_info(lane) for lane in site.registry.lanes.values()]
    body = {
        "status": "ok" if store["reachable"] else "degraded",
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
    return JSONResponse(body, status_code=200 if store["reachable"] else 503)


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
