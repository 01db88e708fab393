"""The HTTP API under /api/v1: sessions, evidence, review, access control and audit log.

`install(app)` adds the API's routers and error handlers to the server's FastAPI app
(`khfsm.server.app.create_app`); each router lives in its own module. Authentication and
roles: `khfsm.api.auth.require_role`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

API_PREFIX = "/api/v1"


def install(app: FastAPI) -> None:
    from khfsm.api import access, review, sessions
    from khfsm.api.errors import install_error_handlers

    install_error_handlers(app)
    for module in (access, sessions, review):
        app.include_router(module.router)
