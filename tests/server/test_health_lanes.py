"""/healthz: lanes whose session has ended are listed apart from those still prepared or
running, and an ended lane's `assessed_fps` is the rate it ran at, not its frames divided
by the time since it started (which would fall for as long as the lane sits there). Where
the site decodes its cameras is reported too."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.server.conftest import RunningServer, connect, op, prepare_body, video_name
from tests.server.test_camera_loss import cut_clip

CAPTURE = 31


def lanes_of(health: dict, key: str) -> list[dict]:
    return [info for info in health[key] if info["capture_id"] == CAPTURE]


@pytest.mark.anyio
async def test_ended_lanes_are_listed_apart_with_the_rate_they_ran_at(
    server: RunningServer, videos: Path
) -> None:
    clip = server.media / "health.mp4"
    if not clip.exists():
        await anyio.to_thread.run_sync(cut_clip, server.media / "clip.mp4", clip, 1.5)
    async with connect(server) as tablet:
        ack = await tablet.request(prepare_body(CAPTURE, video_name("health"), 30, 10,
                                                CapturePath="health.mp4"))  # fmt: skip
        assert ack.body["result"] == "ok", ack.raw
        health = await anyio.to_thread.run_sync(server.health)
        [prepared] = lanes_of(health, "lane_list")
        assert prepared["state"] == "prepared" and not lanes_of(health, "ended_lanes")
        await tablet.send(op("start", CAPTURE))
        await tablet.ack()
        _, terminal = await tablet.until_terminal(within=15)
    health = await anyio.to_thread.run_sync(server.health)
    assert not lanes_of(health, "lane_list")
    [ended] = lanes_of(health, "ended_lanes")
    assert ended["session"] == terminal.body["session"]
    assert ended["end_status"] == -4 and ended["assessed"] == 15
    assert ended["assessed_fps"] > 0
    # Inference runs on the CPU here, so the cameras are decoded there too, and /healthz
    # says so: for the site, with the reason, and for the lane.
    assert health["decode"] == {"device": "cpu", "reason": "inference runs on the CPU"}
    assert ended["decoder"] == "cpu"
    await anyio.sleep(1.0)
    later = await anyio.to_thread.run_sync(server.health)
    [still] = lanes_of(later, "ended_lanes")
    assert still["assessed_fps"] == ended["assessed_fps"]  # the rate while it ran, kept
    # The writer let go of the ended, stored session: what it holds is the lanes still listed.
    assert later["store"]["sessions_in_writer"] <= len(later["lane_list"])
