"""The ASGI application: the HTTP API under /api/v1, /healthz, and the tablets' WebSocket
endpoint (at any path).

A FastAPI app (a Starlette subclass) over `khfsm.site.Site`: the lifespan opens the site
(store, models, the event writer, the batching pose service, the event-loop monitor, and
later every lane, in one task group); each WebSocket connection drives the site's lanes
through the tablet protocol; the API's routers (`khfsm.api`) read the same site's store. On
shutdown (`serve`, `khfsm.server.drain`) running lanes end with status −6 ("server shutting
down") and their terminal pushes reach the tablets before the connections close; their
events are made durable, then the group is cancelled.

Route order matters only among WebSocket routes: the tablets' catch-all is added last, so
that a WebSocket route of a router (e.g. a live board) is matched before it. HTTP routes
never match a WebSocket request nor the reverse.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

import khfsm
from khfsm.server import limits
from khfsm.server.connection import TabletConnection
from khfsm.server.drain import GracefulServer, OpenConnections, drain
from khfsm.server.lane import Lane
from khfsm.settings import Settings
from khfsm.site import Site

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    from khfsm.api import API_PREFIX, install
    from khfsm.api.secret import session_secret

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with Site(settings) as site:
            app.state.site = site
            # A dead core task (see `Site.failure`): ask whoever serves the app to stop, so
            # that the process exits non-zero and its supervisor restarts it.
            site.on_failure(lambda reason: request_exit(app))
            yield

    app = FastAPI(
        title="khfsm",
        version=khfsm.__version__,
        description="Sessions, evidence and review of AI-proctored fitness tests.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # Swagger UI and ReDoc load from a CDN: the site may have no internet
        redoc_url=None,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie="khfsm_session",
        max_age=settings.api_login_hours * 3600,
        same_site="strict",
        https_only=settings.api_cookie_secure,
    )
    app.add_api_route("/healthz", health, methods=["GET"], include_in_schema=False)
    install(app)
    from khfsm.web.router import install as install_pages  # the pages under /ui (khfsm.web)

    install_pages(app)
    # Last: the tablets' configured path is unknown, so any path not taken above is theirs.
    app.router.routes.append(WebSocketRoute("/{path:path}", tablet))
    app.state.connections = OpenConnections()
    return app


def request_exit(app: Starlette) -> None:
    """Call the `exit_server` callback the server runner set on `app.state`, if any."""
    exit_server = getattr(app.state, "exit_server", None)
    if exit_server is not None:
        exit_server()


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
            webhook = site.webhook.wait_idle if site.webhook is not None else None
            await drain(
                site.registry.shutdown, app.state.connections, settings.shutdown_drain_s, webhook
            )

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
    store["sessions_in_writer"] = site.writer.sessions_held  # running, or not yet stored
    store["spool"] = site.writer.spooling
    lanes = list(site.registry.lanes.values())
    healthy = store["reachable"] and site.failure is None
    body = {
        "status": "failed" if site.failure else "ok" if healthy else "degraded",
        "version": khfsm.__version__,
        "lanes": site.registry.counts(),
        "lane_list": [lane_info(lane) for lane in lanes if not lane.session_over],
        # An ended session stays with its lane until the lane's next prepare (for `status`).
        "ended_lanes": [lane_info(lane) for lane in lanes if lane.session_over],
        "store": store,
        "inference": {
            "provider": site.provider,
            "workers": site.pose.workers,
            "max_batch": site.pose.max_batch,
            "batches": site.pose.batches_run,
            "frames": site.pose.frames_run,
            "crop_threads": site.pose.crop_threads,
            # A batch's wall time, of which in the models' runs, and its CPU time: what a
            # batch waited for beyond these was a core or the GIL (bench_server.py prints it).
            "batch_seconds": round(site.pose.batch_seconds, 3),
            "model_seconds": round(site.pose.model_seconds, 3),
            "batch_cpu_seconds": round(site.pose.batch_cpu_seconds, 3),
            # Summed over frames: submitted by a lane until its batch began.
            "wait_seconds": round(site.pose.wait_seconds, 3),
        },
        "decode": {"device": site.decode.name, "reason": site.decode.reason},
        "event_loop_lag_ms": site.monitor.lag_ms(lag_window),
        "media_root": str(site.media.root),
        "webhook": None if site.webhook is None else site.webhook.status(),
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
    end = lane.session.end
    if end is not None:
        info["end_status"] = end.status
    info.update(lane.figures())  # an ended lane's rate is the one it ran at
    return info
