"""Lanes end to end: several at once, stop, time up, reconnect, recording and replay."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest

from khfsm.domain.events import FrameObserved, SessionEnded, StopRequested
from khfsm.domain.replay import replay
from khfsm.registry import get_exercise
from tests.server.conftest import (
    RunningServer,
    assert_recording,
    connect,
    decode_video,
    op,
    prepare_body,
    video_name,
)


async def stored(server: RunningServer, session_id: str) -> list[Any]:
    return await anyio.to_thread.run_sync(server.recorder().events, session_id)


@pytest.mark.anyio
async def test_two_lanes_on_one_connection_and_loop_lag(server: RunningServer) -> None:
    """Two lanes at 10 fps for 4 s on one connection; the loop-lag monitor samples meanwhile
    (its p99 is a figure of benchmarks/bench_timings.py, not a test)."""
    duration, fps = 4.0, 10
    videos = {2: video_name("two_a"), 3: video_name("two_b")}
    async with connect(server) as tablet:
        for capture_id, video in videos.items():
            ack = await tablet.request(prepare_body(capture_id, video, duration, fps))
            assert ack.body["result"] == "ok", ack.raw
        for capture_id in videos:
            assert (await tablet.request(op("start", capture_id))).body["result"] == "ok"
        terminals: dict[int, dict[str, Any]] = {}
        with anyio.fail_after(30):
            while len(terminals) < 2:
                message = await tablet.recv()
                if message.terminal:
                    terminals[message.body["CaptureID"]] = message.body
        lag = server.health(lag_window=duration)["event_loop_lag_ms"]
    print(f"event-loop lag while two lanes ran inference: {lag}")
    assert lag["samples"] > 100
    assert set(terminals) == {2, 3}
    for capture_id, body in terminals.items():
        assert body["status"] == [-2] and body["msg"] == "time is up"
        assert body["frames"] == round(duration * fps)
        assert body["Task"] == "pushup"
        assert_recording(server.media / videos[capture_id], body["frames"], fps)
    assert terminals[2]["session"] != terminals[3]["session"]


@pytest.mark.anyio
async def test_stop_mid_test_ends_before_the_next_frame(server: RunningServer) -> None:
    video = video_name("stop")
    async with connect(server) as tablet:
        await tablet.request(prepare_body(4, video, 60, 20))
        await tablet.request(op("start", 4))
        await anyio.sleep(2.0)
        await tablet.send(op("stop", 4))
        _, terminal = await tablet.until_terminal(within=5)
        ack = await tablet.ack()
        assert ack.body["result"] == "ok" and ack.body["op"] == "stop"
        again = await tablet.request(op("stop", 4))  # idempotent: ok, no second push
        assert again.body["result"] == "ok"
        await tablet.silent(0.3)
    assert terminal.body["status"] == [-1]
    frames = terminal.body["frames"]
    assert 0 < frames < 60 * 20  # stopped mid-test (how fast: benchmarks/bench_timings.py)
    events = await stored(server, terminal.body["session"])
    # The stop is recorded before the next frame: after it, only what the stop derives.
    stop = next(i for i, e in enumerate(events) if isinstance(e, StopRequested))
    assert events[stop].frame == frames
    assert not any(isinstance(e, FrameObserved) for e in events[stop:])
    assert isinstance(events[-1], SessionEnded) and events[-1].frames == frames
    assert [e.frame for e in events if isinstance(e, FrameObserved)] == list(range(frames))
    assert_recording(server.media / video, frames, 20)
    assert replay(events, get_exercise("pushup")).identical


@pytest.mark.anyio
async def test_time_up_after_round_duration_times_fps(server: RunningServer) -> None:
    duration, fps = 2.45, 12  # round(29.4) = 29 frames
    video = video_name("timeup")
    async with connect(server) as tablet:
        await tablet.request(prepare_body(5, video, duration, fps))
        await tablet.request(op("start", 5))
        _, terminal = await tablet.until_terminal(within=15)
    assert terminal.body["status"] == [-2]
    assert terminal.body["frames"] == round(duration * fps) == 29
    events = await stored(server, terminal.body["session"])
    ended = events[-1]
    assert isinstance(ended, SessionEnded) and ended.status == -2 and ended.frames == 29
    assert_recording(server.media / video, 29, 12)


@pytest.mark.anyio
async def test_reconnecting_tablet_gets_status_and_later_pushes(server: RunningServer) -> None:
    video = video_name("reconnect")
    async with connect(server) as first:
        await first.request(prepare_body(6, video, 3.0, 10))
        await first.request(op("start", 6))
    # The first tablet is gone; the lane keeps running. A new tablet asks for status.
    await anyio.sleep(0.5)
    async with connect(server, "/another/path") as second:
        ack = await second.request(op("status", 6), code=2005)
        assert ack.raw.startswith("2005 ") and ack.body["result"] == "ok"
        status = await second.recv()
        assert status.code == 2222
        assert status.body["state"] == "running" and status.body["status"] == []
        assert status.body["frames"] > 0
        _, terminal = await second.until_terminal(within=15)
        assert terminal.body["status"] == [-2] and terminal.body["frames"] == 30
        # status after the end re-sends the terminal push, once per request
        await second.request(op("status", 6))
        again = await second.recv()
        assert again.body == terminal.body
        await second.silent(0.2)


@pytest.mark.anyio
async def test_recording_copied_mid_write_decodes(server: RunningServer, tmp_path: Path) -> None:
    video = video_name("midwrite")
    async with connect(server) as tablet:
        await tablet.request(prepare_body(7, video, 4.0, 10))
        await tablet.request(op("start", 7))
        await anyio.sleep(2.6)  # two 1 s fragments are closed by now
        copy = tmp_path / "copy.mp4"
        await anyio.to_thread.run_sync(shutil.copyfile, server.media / video, copy)
        _, terminal = await tablet.until_terminal(within=15)
    partial = decode_video(copy)  # 1 s fragments: at least the first second decodes
    assert len(partial) >= 25
    full = assert_recording(server.media / video, terminal.body["frames"], 10)
    assert partial == full[: len(partial)]


@pytest.mark.anyio
async def test_prepare_while_running_is_refused_with_the_machine_message(
    server: RunningServer,
) -> None:
    async with connect(server) as tablet:
        await tablet.request(prepare_body(8, video_name("busy"), 30, 10))
        await tablet.request(op("start", 8))
        ack = await tablet.request(prepare_body(8, video_name("busy2"), 30, 10))
        assert ack.body["result"] == "error"
        assert ack.body["error"] == "pushup capture 8 is running; stop it before preparing again"
        again = await tablet.request(op("start", 8))
        assert again.body["error"] == "pushup capture 8 is already running"
        await tablet.send(op("stop", 8))
        _, terminal = await tablet.until_terminal(within=5)
        assert terminal.body["status"] == [-1]
        await tablet.ack()
