"""The review and site pages (`/ui/...`) and the page data only they need (`/api/v1/ui/...`).

The pages are static shells (HTML, CSS, ES modules, the vendored uPlot) served by the server
itself, no CDN; every byte of data they show comes from the JSON API behind the login, and a
page that gets a 401 sends the browser to `/ui/login`. Two data routes live here because only
the pages need them:

- `GET /api/v1/ui/sessions/{id}/measurement`: the deciding measurement over time
  (`khfsm.web.measurement`), computed from the stored keypoints under the session's rules;
- `GET /api/v1/ui/board/stream`: the live site board as server-sent events (`khfsm.web.board`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from khfsm.api.auth import Operator
from khfsm.api.deps import AuditDep, recorder_of, site_of
from khfsm.store.sql import SqlRecorder
from khfsm.web.board import board_events
from khfsm.web.measurement import measurement_series

STATIC = Path(__file__).parent / "static"

Recorder = Annotated[SqlRecorder, Depends(recorder_of)]

router = APIRouter()


def _page(name: str) -> FileResponse:
    # The shells hold no data; `no-cache` so a new release's pages are picked up at once.
    return FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/ui/")


@router.get("/ui", include_in_schema=False)
@router.get("/ui/", include_in_schema=False)
def sessions_page() -> FileResponse:
    return _page("sessions.html")


@router.get("/ui/login", include_in_schema=False)
def login_page() -> FileResponse:
    return _page("login.html")


@router.get("/ui/sessions/{session_id}", include_in_schema=False)
def review_page(session_id: str) -> FileResponse:
    return _page("review.html")


@router.get("/ui/board", include_in_schema=False)
def board_page() -> FileResponse:
    return _page("board.html")


@router.get("/api/v1/ui/sessions/{session_id}/measurement", tags=["pages"])
async def measurement(
    session_id: str, user: Operator, recorder: Recorder, audit: AuditDep
) -> dict[str, Any]:
    """The measurement the session's rules decide on, per assessed frame, with the level's
    thresholds and each repetition's judged value (for the review page's plot)."""

    def compute() -> dict[str, Any] | None:
        if recorder.session(session_id) is None:
            return None
        audit.record(user.name, "measurement", session_id)
        return measurement_series(recorder.events(session_id)).as_json()

    body = await anyio.to_thread.run_sync(compute)
    if body is None:
        raise HTTPException(404, detail=f"no session {session_id}")
    return body


@router.get("/api/v1/ui/board/stream", tags=["pages"])
async def board_stream(request: Request, user: Operator) -> StreamingResponse:
    """Every lane of the site, as server-sent events (`event: board`, the whole board as
    JSON) whenever it changes: a push, a new lane, the time left."""
    return StreamingResponse(
        board_events(site_of(request)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def install(app: FastAPI) -> None:
    """Add the pages, their data routes and their static files to `app`."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
