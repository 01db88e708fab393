"""Who may use the tablet socket and drive a lane: all optional, off by default.

The original tablets send no credentials, so out of the box anyone who reaches the port may
drive any lane (put the server on the exam site's own network). A site can narrow that:

* ``tablet_token`` (a shared secret): every connection must present it, as ``?token=...``
  in the socket URL (``ws://server:8765/?token=...``) or as a ``Token`` field in a request
  (which then authenticates the rest of the connection). Requests without it are refused
  with an error acknowledgement; the connection stays open. The token is masked in logs.
* ``tablet_allowed_origins``: browsers send an ``Origin`` header; when the list is set, a
  connection whose Origin is not in it is refused at the handshake (HTTP 403), so a web
  page elsewhere cannot drive the lanes through a browser on the exam network. Clients that
  send no Origin (the tablets' native apps) are not affected.
* ``lane_ownership``: only the connection that prepared a lane may start or stop it, or
  the site's operator: a connection that presented ``operator_token`` (the same two ways;
  it also passes the tablet token check) and the in-process API (`khfsm.Site`). Status may
  be asked by anyone. A tablet that reconnects is a new connection: it sees its lane's
  status, but stopping it takes the operator (the lane still ends at its Duration).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from pydantic import SecretStr

from khfsm.server.protocol import RequestError
from khfsm.settings import Settings


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: a tablet connection, and whether it holds the site token."""

    connection: int
    operator: bool = False


def _matches(presented: object, secret: SecretStr | None) -> bool:
    if secret is None or not isinstance(presented, str):
        return False
    expected = secret.get_secret_value().encode("utf-8")
    return hmac.compare_digest(presented.encode("utf-8", "replace"), expected)


def is_operator(presented: object, settings: Settings) -> bool:
    """`presented` is the operator token (none is set: nobody is, over the socket)."""
    return _matches(presented, settings.operator_token)


def may_connect(presented: object, settings: Settings) -> bool:
    """`presented` lets a tablet use the socket (always, when no tablet token is set)."""
    if settings.tablet_token is None:
        return True
    return _matches(presented, settings.tablet_token) or is_operator(presented, settings)


def origin_allowed(origin: str | None, settings: Settings) -> bool:
    allowed = settings.tablet_allowed_origins
    if not allowed or origin is None:
        return True
    return origin.rstrip("/") in allowed


TOKEN_REQUIRED = (
    "this server requires the site's tablet token: add ?token=... to the socket URL or a "
    '"Token" field to the request'
)


def check_owner(owner: int | None, caller: Caller | None, what: str, settings: Settings) -> None:
    """Refuse `caller` driving a lane prepared by connection `owner` (lane_ownership)."""
    if not settings.lane_ownership or caller is None or caller.operator:
        return
    if owner != caller.connection:
        raise RequestError(
            f"{what} was prepared by another connection; only it (or the site operator) may "
            "start or stop it (setting lane_ownership)"
        )
