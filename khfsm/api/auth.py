"""Who is asking: a login session (signed cookie) or a bearer token, and what their role allows.

Routers protect themselves with the dependency `require_role`:

    from khfsm.api.auth import require_role
    from khfsm.api.accounts import User

    @router.get("/api/v1/ui/board")
    def board(user: Annotated[User, Depends(require_role("operator"))]) -> ...:

`Operator`, `Reviewer` and `Admin` are those dependencies as annotations
(`def board(user: Operator)`). Without credentials the answer is 401, with a role too low
403. The login cookie holds only the user's name, signed by Starlette's SessionMiddleware
(itsdangerous); the user is looked up on every request, so removing a user ends their
sessions and tokens at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from khfsm.api.accounts import Role, User
from khfsm.api.deps import AccountsDep

SESSION_USER = "user"  # key in the signed login cookie

_bearer = HTTPBearer(auto_error=False, description="A token from `khfsm users token NAME`.")


def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    accounts: AccountsDep,
) -> User:
    """The authenticated user, or 401."""
    if credentials is not None:
        user = accounts.bearer(credentials.credentials)
        if user is None:
            raise _unauthorized("the bearer token is not valid (revoked, or its user removed)")
        return user
    name = request.session.get(SESSION_USER)
    if isinstance(name, str):
        user = accounts.user(name)
        if user is not None:
            return user
        request.session.clear()
    raise _unauthorized("log in (POST /api/v1/login) or send Authorization: Bearer <token>")


def require_role(role: Role | str) -> Callable[..., User]:
    """A dependency that gives the current user when their role allows `role`, else 401/403."""
    needed = Role(role)

    def dependency(user: Annotated[User, Depends(current_user)]) -> User:
        if not user.role.allows(needed):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this needs the {needed.value} role; {user.name} is {user.role.value}",
            )
        return user

    dependency.__name__ = f"require_{needed.value}"
    return dependency


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


CurrentUser = Annotated[User, Depends(current_user)]
Operator = Annotated[User, Depends(require_role(Role.OPERATOR))]
Reviewer = Annotated[User, Depends(require_role(Role.REVIEWER))]
Admin = Annotated[User, Depends(require_role(Role.ADMIN))]
