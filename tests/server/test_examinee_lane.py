"""A live lane records who its keypoints are of: situp_24 through the real server.

The camera is the sit-up clip where a partner holds the examinee's feet; the first frames
show only the partner, so the lane first follows her and then switches to the examinee, and
both changes are stored just before the frame they apply to.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest

from khfsm.domain.events import ExamineeChanged, FrameObserved, SessionPrepared
from khfsm.domain.replay import replay
from khfsm.registry import get_exercise
from tests.server.conftest import RunningServer, connect, op, prepare_body, video_name

SITUP = "situp_24_junghoonji_girls.mp4"


@pytest.mark.anyio
async def test_a_lane_records_the_switch_to_the_examinee(
    server: RunningServer, videos: Path
) -> None:
    camera = server.media / "situp24.mp4"
    if not camera.exists():
        shutil.copyfile(videos / SITUP, camera)  # a link out of the media root is refused
    body = prepare_body(7, video_name("examinee"), 1.5, 20, Task="situp", CapturePath=camera.name)
    async with connect(server) as tablet:
        for request in (body, op("start", 7, task="situp")):
            ack = await tablet.request(request)
            assert ack.body["result"] == "ok", ack.body
        _, terminal = await tablet.until_terminal(within=30)
    assert terminal.body["status"] == [-2]
    events: list[Any] = await anyio.to_thread.run_sync(
        server.recorder().events, terminal.body["session"]
    )
    changes = [e for e in events if isinstance(e, ExamineeChanged)]
    assert [c.reason for c in changes] == ["chosen", "switched"]
    chosen, switched = changes
    assert chosen.frame == 0 and chosen.x < 0.25  # only the partner is seen at first
    assert 0 < switched.frame < 20 and switched.x > 0.4 and switched.candidates >= 2
    for change in changes:
        following = events[events.index(change) + 1]
        assert isinstance(following, FrameObserved) and following.frame == change.frame
    prepared = events[0]
    assert isinstance(prepared, SessionPrepared)
    assert replay(events, get_exercise("situp", prepared.rules_version)).identical
