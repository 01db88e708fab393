"""The ASGI application: the tablets' WebSocket endpoint (at any path) and /healthz.

The lifespan opens the store (a SQLite store is upgraded to the current schema on start;
PostgreSQL is upgraded by the administrator with `khfsm db upgrade`), loads the pose models,
and starts, in one task group, the event writer, the batching pose service, the event-loop
monitor and, later, every lane. On shutdown running lanes end with status −5 ("the server
shut down during the test"), their events are made durable, then the group is cancelled.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import khfsm
from khfsm.server.connection import TabletConnection
from khfsm.server.context import FaceLoader, LaneContext
from khfsm.server.lanes import LaneRegistry
from khfsm.server.monitor import LoopMonitor
from khfsm.server.paths import MediaRoot
from khfsm.settings import Settings

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_S = 15.0


@dataclass(eq=False)
class ServerState:
    settings: Settings
    registry: LaneRegistry
    monitor: LoopMonitor
    recorder: Any  # khfsm.store.recorder.EventRecorder
    writer: Any  # khfsm.store.writer.EventWriter
    pose: Any  # khfsm.vision.batching.PoseService
    provider: str
    database: str


def create_app(settings: Settings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from khfsm.store.sql import open_recorder
        from khfsm.store.urls import is_sqlite, parse_url, redact_database_url
        from khfsm.store.writer import EventWriter
        from khfsm.vision.batching import PoseService
        from khfsm.vision.manifest import pose_model_hashes
        from khfsm.vision.pose import load_pose_models

        media = MediaRoot.at(settings.resolved_media_root)
        media.root.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_database_url
        if is_sqlite(parse_url(url)):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        recorder = await anyio.to_thread.run_sync(
            lambda: open_recorder(url, upgrade=is_sqlite(parse_url(url)))
        )
        models = await anyio.to_thread.run_sync(
            load_pose_models, settings.inference_threads, settings.providers
        )
        provider = models.detector.get_providers()[0]
        writer = EventWriter(recorder)
        pose = PoseService(
            models,
            max_batch=settings.max_batch,
            max_wait_ms=settings.max_wait_ms,
            workers=settings.inference_workers,
        )
        monitor = LoopMonitor()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(writer.run, name="event writer")
                tg.start_soon(pose.run, name="pose service")
                tg.start_soon(monitor.run, name="loop monitor")
                ctx = LaneContext(
                    settings=settings,
                    media=media,
                    writer=writer,
                    pose=pose,
                    task_group=tg,
                    face=FaceLoader(settings.inference_threads, settings.providers),
                    models=pose_model_hashes(),
                )
                registry = LaneRegistry(ctx)
                app.state.server = ServerState(
                    settings,
                    registry,
                    monitor,
                    recorder,
                    writer,
                    pose,
                    provider,
                    redact_database_url(url),
                )
                log.info(
                    "khfsm %s ready: store %s, media root %s, inference on %s",
                    khfsm.__version__,
                    redact_database_url(url),
                    media.root,
                    provider,
                )
                try:
                    yield
                finally:
                    with anyio.CancelScope(shield=True):
                        await registry.shutdown(SHUTDOWN_WAIT_S)
                    tg.cancel_scope.cancel()
        finally:
            recorder.close()

    return Starlette(
        routes=[
            Route("/healthz", health),
            WebSocketRoute("/{path:path}", tablet),  # the tablets' configured path is unknown
        ],
        lifespan=lifespan,
    )


async def tablet(websocket: WebSocket) -> None:
    state: ServerState = websocket.app.state.server
    await TabletConnection(websocket, state.registry).serve()


async def health(request: Request) -> JSONResponse:
    state: ServerState = request.app.state.server
    window = request.query_params.get("lag_window")
    try:
        lag_window = float(window) if window else None
    except ValueError:
        lag_window = None
    store: dict[str, Any] = {"url": state.database, "reachable": False}
    with anyio.move_on_after(3.0):
        try:
            store["sessions"] = await anyio.to_thread.run_sync(
                state.recorder.count_sessions, abandon_on_cancel=True
            )
            store["reachable"] = True
        except Exception as error:  # the store's own errors say what is wrong
            store["error"] = str(error)
    store["pending_events"] = state.writer.pending_events
    lanes = [lane_info(lane) for lane in state.registry.lanes.values()]
    body = {
        "status": "ok" if store["reachable"] else "degraded",
        "version": khfsm.__version__,
        "lanes": state.registry.counts(),
        "lane_list": lanes,
        "store": store,
        "inference": {
            "provider": state.provider,
            "batches": state.pose.batches_run,
            "frames": state.pose.frames_run,
        },
        "event_loop_lag_ms": state.monitor.lag_ms(lag_window),
        "media_root": str(state.registry.ctx.media.root),
    }
    return JSONResponse(body, status_code=200 if store["reachable"] else 503)


def lane_info(lane: Any) -> dict[str, Any]:
    progress = lane.session.progress
    info: dict[str, Any] = {
        "task": lane.task,
        "capture_id": lane.capture_id,
        "session": lane.session_id,
        "state": lane.session.state.value,
        "frames": progress.frames,
        "count": progress.count,
        "total": progress.total,
        "subscribers": len(lane.subscribers),
    }
    stats = getattr(lane, "stats", None)
    if stats is not None:
        info.update(stats.snapshot())
    return info
