"""The HTTP API under /api/v1: sessions, evidence, review, access control and audit log.

`routers()` lists the API's routers for `khfsm.server.app.create_app`; each lives in its own
module. Authentication and roles: `khfsm.api.auth.require_role`.
"""

from __future__ import annotations

from fastapi import APIRouter

API_PREFIX = "/api/v1"


def routers() -> list[APIRouter]:
    from khfsm.api import access, sessions

    return [access.router, sessions.router]
