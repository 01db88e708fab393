"""What a lane tells whoever follows it: a counted repetition, its progress, or its end.

A `Push` is the typed form of the tablet protocol's push (see `khfsm.server.protocol.push`,
which writes it on the wire): the WebSocket adapter encodes it for each tablet, an embedding
application reads it from `LaneHandle.progress()` as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Push:
    status: tuple[int, ...]  # [0] a valid rep, [3XY] an invalid one, [<0] the end status
    total: int  # repetitions judged so far
    count: int  # valid repetitions so far
    time: tuple[float, float]  # the rep's start and end, seconds into the test
    message: str  # the terminal push's words ("time is up"); empty for a rep
    task: str
    capture_id: int
    session: str  # the session id
    push_code: int  # the task's push code (a numbered tablet frame's prefix, 2222 for pushup)
    final: bool = False  # the lane's last push: the session has ended and is stored
    # Keys the wire push carries after the fixed ones, in this order ("frames", the face
    # check's "similarity" and "threshold", a status reply's "state").
    details: Mapping[str, Any] = field(default_factory=dict)
