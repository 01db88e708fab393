"""Logging in and out, who am I, and the audit log (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from khfsm.api import API_PREFIX
from khfsm.api.accounts import Role
from khfsm.api.auth import SESSION_USER, Admin, CurrentUser
from khfsm.api.deps import AccountsDep, AuditDep

router = APIRouter(prefix=API_PREFIX, tags=["access"])


class Credentials(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class Me(BaseModel):
    user: str
    role: Role


class AuditRow(BaseModel):
    id: int
    at: datetime
    user: str
    action: str
    session_id: str | None
    detail: str


@router.post("/login", response_model=Me)
def login(
    credentials: Credentials,
    request: Request,
    accounts: AccountsDep,
    audit: AuditDep,
) -> Me:
    """Check a name and password; on success the response sets the login cookie."""
    user = accounts.login(credentials.username, credentials.password)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="wrong user name or password")
    request.session.clear()
    request.session[SESSION_USER] = user.name
    audit.record(user.name, "login", None)
    return Me(user=user.name, role=user.role)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request) -> None:
    request.session.clear()


@router.get("/me", response_model=Me)
def me(user: CurrentUser) -> Me:
    return Me(user=user.name, role=user.role)


@router.get("/audit", response_model=list[AuditRow])
def audit_entries(
    _admin: Admin,
    audit: AuditDep,
    user: Annotated[str | None, Query(description="Only this user's entries.")] = None,
    session: Annotated[str | None, Query(description="Only entries about this session.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[Any]:
    """The audit log, newest first (admins only)."""
    return [
        AuditRow(
            id=entry.entry_id,
            at=entry.at,
            user=entry.user,
            action=entry.action,
            session_id=entry.session_id,
            detail=entry.detail,
        )
        for entry in audit.entries(user=user, session_id=session, limit=limit)
    ]
