"""What one site lets its tablets ask for, so that no client can exhaust the server.

All limits are settings (the block "the tablet socket" in `khfsm.settings`); each refusal is
an error acknowledgement that names the limit and the setting that raises it:

* ``max_lanes`` (64): lanes prepared or running at once on this server;
* ``max_lanes_per_connection`` (16): of those, lanes prepared by one tablet connection;
* ``max_duration_s`` (3600) and ``max_fps`` (30): a test's Duration and Fps (the wire's
  own bounds, 4 h and 60 fps, are the most any site may allow);
* ``max_message_bytes`` (64 KiB): a request frame larger than this is answered with an
  error and not parsed; one more than 16 times larger closes the connection (code 1009,
  uvicorn's ``ws_max_size``), so that nothing that size is ever held in memory;
* ``max_outgoing_frames`` (256): replies queued for one tablet before the server stops
  reading its requests (progress pushes beyond 32 are dropped oldest first, see
  `khfsm.server.outbox`); no reply is larger than a few KiB (echoes are shortened);
* ``prepared_timeout_s`` (900): a lane prepared and never started ends (as stopped, −1)
  after this long, so prepares abandoned by vanished tablets do not hold ``max_lanes``;
* ``send_timeout_s`` (30): a tablet that takes no frame for this long is disconnected
  (its lanes keep running), so a client that never reads holds a bounded amount of memory.
"""

from __future__ import annotations

from khfsm.server.protocol import Request, RequestError
from khfsm.settings import Settings

# uvicorn's ws_max_size: the frame size past which the connection is closed outright.
HARD_SIZE_FACTOR = 16


def ws_max_size(settings: Settings) -> int:
    return settings.max_message_bytes * HARD_SIZE_FACTOR


def check_message_size(size: int, settings: Settings) -> None:
    limit = settings.max_message_bytes
    if size > limit:
        raise RequestError(
            f"the request is {size} bytes; at most {limit} (setting max_message_bytes)"
        )


def check_request(request: Request, settings: Settings) -> None:
    """The request's Duration and Fps within this site's limits."""
    duration = getattr(request, "Duration", None)
    if isinstance(duration, float) and duration > settings.max_duration_s:
        raise RequestError(
            f"Duration {duration:g} s is longer than this site allows "
            f"({settings.max_duration_s:g} s, setting max_duration_s)"
        )
    fps = getattr(request, "Fps", None)
    if isinstance(fps, float) and fps > settings.max_fps:
        raise RequestError(
            f"Fps {fps:g} is higher than this site allows ({settings.max_fps:g}, setting max_fps)"
        )


def check_lane_room(open_lanes: int, open_here: int | None, settings: Settings) -> None:
    """Room for one more lane: `open_lanes` on the server, `open_here` on this connection
    (None when the request does not come from a tablet connection)."""
    if open_lanes >= settings.max_lanes:
        raise RequestError(
            f"this server already has {open_lanes} lanes prepared or running, its limit "
            f"(setting max_lanes); stop or finish one first"
        )
    if open_here is not None and open_here >= settings.max_lanes_per_connection:
        raise RequestError(
            f"this connection already has {open_here} lanes prepared or running, its limit "
            f"(setting max_lanes_per_connection); stop or finish one first"
        )
