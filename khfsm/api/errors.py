"""The API's errors as JSON a client can show: `{"detail": "what went wrong"}`, never a
traceback. The store's own errors already say what to do."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from khfsm.errors import KhfsmError
from khfsm.store.recorder import StoreUnavailable

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StoreUnavailable)
    async def unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, error)
        return JSONResponse({"detail": str(error)}, status_code=503)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> JSONResponse:
        # A defect: the traceback goes to the server's log, never to the client.
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return JSONResponse(
            {"detail": "internal error; the server's log has the details"}, status_code=500
        )

    @app.exception_handler(KhfsmError)
    async def refused(request: Request, error: Exception) -> JSONResponse:
        log.error("%s %s failed: %s", request.method, request.url.path, error)
        return JSONResponse({"detail": str(error)}, status_code=500)
