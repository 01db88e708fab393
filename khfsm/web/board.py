"""The live site board: every lane at a glance, as server-sent events.

A board connection follows the site's lanes the way a tablet does, as a `Listener` of each
lane (`Lane.subscribe`), so a counted repetition reaches the board at once; between pushes it
wakes every `TICK_S` to pick up new lanes and the time left. Each message is the whole board
(a handful of lanes: simpler and more robust than diffs), sent only when it changed.

Alerts, from what the server knows without asking the lane:
- ``camera_lost``: the session ended with status −4 (video source lost);
- ``unallowed_motion``: the session was stopped for unallowed motion (violated, −3);
- ``falling_behind``: the camera's frame queue is full (the camera waits for the assessment:
  `khfsm.server.pipeline.FRAME_QUEUE` frames, 0.4 s at 20 fps), or the lane assesses fewer
  than `BEHIND_RATIO` of its fps after `BEHIND_AFTER_S`;
- ``database_outage``: the store did not answer a probe within `PROBE_TIMEOUT_S`.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from khfsm.domain.codes import EndStatus
from khfsm.domain.machine import State
from khfsm.server.lane import Lane, LaneKey
from khfsm.server.pipeline import FRAME_QUEUE
from khfsm.server.push import Push

if TYPE_CHECKING:
    from khfsm.site import Site

TICK_S = 1.0  # the time left changes every second; new lanes show within a second
HEARTBEAT_S = 15.0  # a comment line that keeps proxies from closing an idle stream
PROBE_EVERY_S = 5.0
PROBE_TIMEOUT_S = 2.0
BEHIND_RATIO = 0.85
BEHIND_AFTER_S = 5.0

_listener_ids = itertools.count(1_000_000_000)  # apart from the tablet connections' ids


@dataclass(slots=True)
class Heard:
    """The last push a board heard from a lane, and when (epoch milliseconds)."""

    push: Push
    at_ms: float


@dataclass(slots=True)
class BoardListener:
    """Hears every lane's pushes for one board connection and wakes its stream."""

    id: int = field(default_factory=lambda: next(_listener_ids))
    heard: dict[str, Heard] = field(default_factory=dict)  # session id -> last push
    wake: anyio.Event = field(default_factory=anyio.Event)

    def __call__(self, push: Push) -> None:
        self.heard[push.session] = Heard(push, time.time() * 1000)
        self.wake.set()

    async def wait(self, timeout_s: float) -> None:
        with anyio.move_on_after(timeout_s):
            await self.wake.wait()
        self.wake = anyio.Event()


def lane_card(lane: Lane, heard: Heard | None, store_ok: bool) -> dict[str, Any]:
    """One lane as the board shows it."""
    session = lane.session
    prepared = session.prepared
    fps = prepared.fps if prepared else 0.0
    progress = session.progress
    state = session.state
    left_s: float | None = None
    if prepared is not None and fps and not lane.session_over:
        left_s = round(max(0, prepared.frames - progress.frames) / fps, 1)
    last = heard.push if heard is not None else lane.final_push
    final = lane.final_push
    end_status = final.status[0] if final is not None and final.status else None
    alerts: list[dict[str, str]] = []
    if end_status == EndStatus.SOURCE_LOST:
        alerts.append({"code": "camera_lost", "text": "camera lost"})
    if state is State.VIOLATED or end_status == EndStatus.UNALLOWED_MOTION:
        alerts.append({"code": "unallowed_motion", "text": "unallowed motion"})
    behind = _behind(lane, fps)
    if behind:
        alerts.append({"code": "falling_behind", "text": behind})
    if not store_ok:
        alerts.append({"code": "database_outage", "text": "database not answering"})
    return {
        "task": lane.task_name,
        "capture_id": lane.capture_id,
        "session": lane.session_id,
        "rules_version": prepared.rules_version if prepared else "",
        "level": prepared.level if prepared else None,
        "state": state.value,
        "phase": lane.phase.value,
        "count": progress.count,
        "total": progress.total,
        "frames": progress.frames,
        "time_left_s": left_s,
        "end_status": end_status,
        "end_message": final.message if final is not None else "",
        "last_push": None
        if last is None
        else {
            "status": list(last.status),
            "count": last.count,
            "total": last.total,
            "time": list(last.time),
            "final": last.final,
            "at_ms": heard.at_ms if heard is not None else None,
        },
        "alerts": alerts,
    }


def _behind(lane: Lane, fps: float) -> str:
    if lane.session.state is not State.RUNNING or not fps:
        return ""
    figures = lane.figures()
    return behind(
        backlog=float(figures.get("backlog", 0)),
        assessed=float(figures.get("assessed", 0)),
        rate=float(figures.get("assessed_fps", 0)),
        fps=fps,
    )


def behind(
    backlog: float, assessed: float, rate: float, fps: float, queue: int = FRAME_QUEUE
) -> str:
    """Why a running lane is falling behind, or "" when it is not.

    The backlog cannot pass the queue's size (the camera then waits), so a full queue is
    the sign; a lane whose rate stays under `BEHIND_RATIO` of its fps once `BEHIND_AFTER_S`
    of frames are assessed is behind however its queue looks."""
    if backlog >= queue - 1:
        return f"falling behind: {backlog:.0f} frames waiting"
    if rate and assessed / rate >= BEHIND_AFTER_S and rate < BEHIND_RATIO * fps:
        return f"falling behind: {rate:.1f} of {fps:g} fps"
    return ""


def board(site: Site, listener: BoardListener, store_ok: bool) -> dict[str, Any]:
    lanes: list[tuple[LaneKey, Lane]] = sorted(site.registry.lanes.items())
    return {
        "lanes": [
            lane_card(lane, listener.heard.get(lane.session_id), store_ok) for _, lane in lanes
        ],
        "store_ok": store_ok,
    }


class StoreProbe:
    """Whether the store answers, asked at most every `PROBE_EVERY_S`."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.ok = True
        self._next = 0.0

    async def check(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return self.ok
        self._next = now + PROBE_EVERY_S
        self.ok = False
        with anyio.move_on_after(PROBE_TIMEOUT_S):
            try:
                await anyio.to_thread.run_sync(
                    self.site.recorder.count_sessions, abandon_on_cancel=True
                )
                self.ok = True
            except Exception:  # any store error is an outage as far as the board goes
                self.ok = False
        return self.ok


async def board_events(site: Site) -> AsyncIterator[str]:
    """The board as a stream of server-sent events (``event: board``), until the client goes."""
    listener = BoardListener()
    probe = StoreProbe(site)
    followed: set[str] = set()
    last_body = ""
    last_sent = 0.0
    try:
        while True:
            for lane in list(site.registry.lanes.values()):
                if lane.session_id not in followed:
                    lane.subscribe(listener)
                    followed.add(lane.session_id)
            snapshot = board(site, listener, await probe.check())
            body = json.dumps(snapshot, separators=(",", ":"))
            now = time.monotonic()
            if body != last_body:
                sent = {**snapshot, "sent_ms": round(time.time() * 1000, 1)}
                yield f"event: board\ndata: {json.dumps(sent, separators=(',', ':'))}\n\n"
                last_body, last_sent = body, now
            elif now - last_sent >= HEARTBEAT_S:
                yield ": still here\n\n"
                last_sent = now
            await listener.wait(TICK_S)
    finally:
        site.registry.unsubscribe(listener.id)
