"""What the API's handlers reach the site through: FastAPI dependencies over `app.state`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from khfsm.api.accounts import Accounts
from khfsm.api.audit import AuditLog

if TYPE_CHECKING:
    from khfsm.site import Site
    from khfsm.store.sql import SqlRecorder


def site_of(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


def recorder_of(request: Request) -> SqlRecorder:
    return site_of(request).recorder


def accounts_of(request: Request) -> Accounts:
    return Accounts(recorder_of(request).engine)


def audit_of(request: Request) -> AuditLog:
    return AuditLog(recorder_of(request).engine)


AccountsDep = Annotated[Accounts, Depends(accounts_of)]
AuditDep = Annotated[AuditLog, Depends(audit_of)]
