"""An operator's stop under load is recorded as a stop (−1), never as an internal error.

Issue 10, item 2: with the frame queue full, the assessment closed the frame stream while the
camera stage was blocked sending into it, and the `BrokenResourceError` took the
internal-error path (−5) before the stop was recorded. Here three lanes at 60 fps share one
pose worker that takes one frame at a time, so each lane's queue is full (its backlog is
reported by /healthz) when all three are stopped at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from khfsm.domain.events import SessionEnded, SourceFailed, StopRequested
from khfsm.server.pipeline import FRAME_QUEUE
from tests.server.conftest import (
    RunningServer,
    connect,
    op,
    prepare_body,
    running_server,
    video_name,
)

LANES = (61, 62, 63)


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory, videos: Path) -> Iterator[RunningServer]:
    with running_server(
        tmp_path_factory.mktemp("khfsm-backlog"),
        videos,
        max_batch=1,
        max_wait_ms=0.0,
        inference_workers=1,
        max_fps=60,
    ) as running:
        yield running


def backlogs(server: RunningServer) -> dict[int, int]:
    lanes = server.health()["lane_list"]
    return {
        lane["capture_id"]: lane.get("backlog", 0)
        for lane in lanes
        if lane["state"] == "running" and lane["capture_id"] in LANES
    }


@pytest.mark.anyio
async def test_stopping_three_backlogged_lanes_records_minus_1_each(
    slow_server: RunningServer,
) -> None:
    async with connect(slow_server) as tablet:
        for capture_id in LANES:
            body = prepare_body(capture_id, video_name("backlog"), 60, 60)
            assert (await tablet.request(body)).body["result"] == "ok"
        for capture_id in LANES:
            assert (await tablet.request(op("start", capture_id))).body["result"] == "ok"
        full = FRAME_QUEUE - 1
        with anyio.move_on_after(30):
            while True:
                seen = await anyio.to_thread.run_sync(backlogs, slow_server)
                if len(seen) == len(LANES) and min(seen.values()) >= full:
                    break
                await anyio.sleep(0.1)
        assert len(seen) == len(LANES) and min(seen.values()) >= full, (
            f"the lanes never fell behind (backlogs {seen}); the test needs a full frame queue"
        )
        for capture_id in LANES:
            await tablet.send(op("stop", capture_id))
        terminals = {}
        with anyio.fail_after(30):
            while len(terminals) < len(LANES):
                message = await tablet.recv(30)
                if message.terminal:
                    terminals[message.body["CaptureID"]] = message
    recorder = slow_server.recorder()
    for capture_id, terminal in terminals.items():
        assert terminal.body["status"] == [-1], (capture_id, terminal.raw)
        events = await anyio.to_thread.run_sync(recorder.events, terminal.body["session"])
        assert any(isinstance(e, StopRequested) for e in events)
        assert not any(isinstance(e, SourceFailed) for e in events)
        ended = events[-1]
        assert isinstance(ended, SessionEnded) and ended.status == -1, ended
