"""Reading a session's stored rows for the API: a page of events, and the keypoints.

Both read the events table directly (read-only) for what the recorder interface does not
offer: a page with a limit, and the frames alone decoded in bulk with numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from khfsm.domain.events import FrameObserved, SessionPrepared
from khfsm.domain.pose import LANDMARK_COLUMNS, NUM_LANDMARKS
from khfsm.store import schema
from khfsm.store.sql import as_utc

_events = schema.events
_KEYPOINT_FLOATS = NUM_LANDMARKS * LANDMARK_COLUMNS
_X, _Y, _VISIBILITY = 0, 1, 3  # landmark columns: x_px, y_px, z, visibility, presence
DECIMALS = 4


@dataclass(frozen=True, slots=True)
class EventPage:
    items: list[dict[str, Any]]
    next: int | None  # pass as `after` for the next page; None at the end of the stream


def event_page(engine: Engine, session_id: str, after: int, limit: int) -> EventPage:
    """Events with seq > `after`, at most `limit`, each as its stored fields plus seq, type,
    hash and the time it was stored. A frame's keypoints are not repeated here (the
    keypoints endpoint has them compactly): `person` says whether it has any."""
    query = (
        select(
            _events.c.seq,
            _events.c.type,
            _events.c.payload,
            _events.c.blob.is_not(None).label("person"),
            _events.c.hash,
            _events.c.recorded_at,
        )
        .where(_events.c.session_id == session_id)
        .where(_events.c.seq > after)
        .order_by(_events.c.seq)
        .limit(limit + 1)  # one more tells whether there is a next page
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    more = len(rows) > limit
    items = []
    for row in rows[:limit]:
        item: dict[str, Any] = json.loads(row.payload)
        if row.type == FrameObserved.__name__:
            item["person"] = bool(row.person)
        recorded = row.recorded_at
        item.update(
            seq=row.seq,
            type=row.type,
            hash=row.hash,
            recorded_at=None if recorded is None else as_utc(recorded).isoformat(),
        )
        items.append(item)
    return EventPage(items, items[-1]["seq"] if more and items else None)


def keypoints(engine: Engine, session_id: str, prepared: SessionPrepared) -> dict[str, Any]:
    """Every assessed frame's 2-D landmarks in normalized image coordinates (0..1, 4
    decimals) with their visibility: `landmarks[i]` is frame `frames[i]`, 33 × [x, y,
    visibility], or null when nobody was found in it.

    `times` are seconds since the start (frame / fps, the rules' clock); `pts` the frame's
    presentation time in the recording: the stored one when the frame carries it, else
    frame / fps, which is where the recorder puts assessed frame k."""
    query = (
        select(_events.c.payload, _events.c.blob)
        .where(_events.c.session_id == session_id)
        .where(_events.c.type == FrameObserved.__name__)
        .order_by(_events.c.seq)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    fps = prepared.fps
    scale = np.array(
        [float(prepared.frame_width or 1), float(prepared.frame_height or 1), 1.0],
        dtype=np.float64,
    )
    frames: list[int] = []
    pts: list[float] = []
    blobs: list[bytes] = []
    present: list[bool] = []
    for payload, blob in rows:
        fields = json.loads(payload)
        frame = int(fields["frame"])
        frames.append(frame)
        stored_pts = fields.get("pts")
        pts.append(round(stored_pts if stored_pts is not None else frame / fps, DECIMALS))
        present.append(blob is not None)
        if blob is not None:
            blobs.append(bytes(blob[: _KEYPOINT_FLOATS * 4]))
    # All frames at once: one conversion instead of 2440 small ones.
    points = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(
        -1, NUM_LANDMARKS, LANDMARK_COLUMNS
    )[:, :, (_X, _Y, _VISIBILITY)]
    normalized = np.round(points.astype(np.float64) / scale, DECIMALS)
    drawn = iter(normalized)
    # numpy arrays, serialised natively by the API's JSON encoder (orjson).
    landmarks = [next(drawn) if found else None for found in present]
    return {
        "fps": fps,
        "width": prepared.frame_width,
        "height": prepared.frame_height,
        "frames": frames,
        "times": [round(frame / fps, DECIMALS) for frame in frames],
        "pts": pts,
        "landmarks": landmarks,
    }
