"""A lane's test lasts round(Duration × Fps) frames, halves up, on the real server: the budget
either side of a half and at the half itself (29.4 alone cannot tell rounding from
truncation, 4.5 tells rounding up from round-half-to-even)."""

from __future__ import annotations

import anyio
import pytest

from khfsm.domain.events import FrameObserved, SessionEnded
from tests.server.conftest import (
    RunningServer,
    assert_recording,
    connect,
    op,
    prepare_body,
    video_name,
)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("capture_id", "duration", "frames"), [(61, 0.44, 4), (62, 0.45, 5), (63, 0.46, 5)]
)
async def test_time_up_after_the_rounded_budget(
    server: RunningServer, capture_id: int, duration: float, frames: int
) -> None:
    video = video_name("budget")
    async with connect(server) as tablet:
        ack = await tablet.request(prepare_body(capture_id, video, duration, 10))
        assert ack.body["result"] == "ok", ack.raw
        await tablet.request(op("start", capture_id))
        _, terminal = await tablet.until_terminal(within=15)
    assert terminal.body["status"] == [-2]
    assert terminal.body["frames"] == frames
    events = await anyio.to_thread.run_sync(server.recorder().events, terminal.body["session"])
    assert events[0].frames == frames
    assert sum(isinstance(e, FrameObserved) for e in events) == frames
    ended = events[-1]
    assert isinstance(ended, SessionEnded) and (ended.status, ended.frames) == (-2, frames)
    assert_recording(server.media / video, frames, 10)
