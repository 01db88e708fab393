"""A source that stops delivering frames ends the test with −4: a file that ends before
Duration at once ("video file ... ended"), a real RTSP camera (GStreamer's RTSP server) that
is cut off after the grace period."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import av
import pytest

import khfsm
from khfsm.domain.events import FrameObserved, SourceFailed
from khfsm.server.pipeline import FRAME_QUEUE
from khfsm.settings import Settings
from tests.conftest import unavailable
from tests.server.conftest import (
    CLIP,
    SHARED,
    RunningServer,
    assert_recording,
    connect,
    free_port,
    op,
    prepare_body,
    video_name,
)

RTSP_SERVE = SHARED / "tools" / "rtsp_serve.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def cut_clip(source: Path, target: Path, seconds: float) -> int:
    """The first `seconds` of `source` as a new file; returns its frame count."""
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream_in = src.streams.video[0]
        rate = stream_in.average_rate
        assert rate is not None
        out = dst.add_stream("libx264", rate=rate)
        out.width, out.height, out.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        count = 0
        for frame in src.decode(stream_in):
            if count >= round(seconds * float(rate)):
                break
            image = frame.to_ndarray(format="bgr24")
            new = av.VideoFrame.from_ndarray(image, format="bgr24")
            new.pts = count
            new.time_base = 1 / rate
            for packet in out.encode(new):
                dst.mux(packet)
            count += 1
        for packet in out.encode(None):
            dst.mux(packet)
    return count


@pytest.mark.anyio
async def test_a_file_that_ends_before_duration_ends_the_test_at_once(
    server: RunningServer, videos: Path
) -> None:
    clip = server.media / "short.mp4"
    if not clip.exists():
        await anyio.to_thread.run_sync(cut_clip, server.media / "clip.mp4", clip, 1.5)
    fps = 10
    async with connect(server) as tablet:
        ack = await tablet.request(prepare_body(20, video_name("short"), 30, fps,
                                                CapturePath="short.mp4"))  # fmt: skip
        assert ack.body["result"] == "ok", ack.raw
        await tablet.send(op("start", 20))
        await tablet.ack()
        _, terminal = await tablet.until_terminal(within=15)
    # A file has no camera to wait for: not the live camera's "no frame for 1 s".
    assert terminal.body["status"] == [-4]
    assert terminal.body["msg"] == (
        "video source lost: video file short.mp4 ended after 1.5 s (15 of 300 frames)"
    )
    assert terminal.body["frames"] == 15  # 1.5 s of the clip at 10 fps
    events = await anyio.to_thread.run_sync(server.recorder().events, terminal.body["session"])
    failed = [e for e in events if isinstance(e, SourceFailed)]
    assert len(failed) == 1 and failed[0].status == -4 and failed[0].frame == 15
    assert sum(isinstance(e, FrameObserved) for e in events) == 15


@pytest.mark.anyio
async def test_a_file_camera_judges_what_khfsm_assess_judges(
    server: RunningServer, videos: Path
) -> None:
    from khfsm.offline.assess import assess_video

    clip = server.media / "first-rep.mp4"
    if not clip.exists():
        await anyio.to_thread.run_sync(cut_clip, server.media / "clip.mp4", clip, 8.0)
    fps = 10
    async with connect(server) as tablet:
        ack = await tablet.request(prepare_body(21, video_name("first-rep"), 122, fps,
                                                CapturePath="first-rep.mp4"))  # fmt: skip
        assert ack.body["result"] == "ok", ack.raw
        await tablet.send(op("start", 21))
        await tablet.ack()
        _, terminal = await tablet.until_terminal(within=30)
    _, offline = await anyio.to_thread.run_sync(assess_video, clip, "pushup", 5, fps, None)
    # The same frames, the same reps; the test ends where the file does (assess's own test
    # is the whole file, so it calls that end time up; the lane had 122 s and says -4).
    assert terminal.body["status"] == [-4] and offline.end_status == -2
    assert terminal.body["frames"] == offline.frames == 80
    assert (terminal.body["count"], terminal.body["total"]) == (offline.count, offline.total)


@pytest.fixture
def rtsp_camera(server: RunningServer) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    if not RTSP_SERVE.is_file():
        unavailable(f"{RTSP_SERVE} not found (../shared/tools/rtsp_serve.py)")
    probe = [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"]
    if not Path(SYSTEM_PYTHON).is_file() or subprocess.run(probe, capture_output=True).returncode:
        unavailable(
            "GStreamer's RTSP server is not installed (scripts/setup.sh --test installs it): "
            "apt-get install python3-gi "
            "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad "
            "gstreamer1.0-plugins-ugly gstreamer1.0-libav"
        )
    port = free_port()
    process = subprocess.Popen(
        [SYSTEM_PYTHON, str(RTSP_SERVE), str(server.media / "clip.mp4"), "--port", str(port),
         "--loop"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("ready "):
        process.kill()
        unavailable(f"rtsp_serve.py did not start: {line.strip()}")
    # the password is what the test checks is never stored or pushed
    url = line.split()[1].replace("rtsp://", "rtsp://admin:secret123@")
    try:
        yield url, process
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.anyio
async def test_rtsp_camera_cut_off_is_source_lost(
    server: RunningServer, rtsp_camera: tuple[str, subprocess.Popen[str]]
) -> None:
    url, process = rtsp_camera
    async with connect(server) as tablet:
        ack = await tablet.request(
            prepare_body(21, video_name("rtsp"), 60, 10, CapturePath=url), within=30
        )
        assert ack.body["result"] == "ok", ack.raw
        await tablet.request(op("start", 21))
        await anyio.sleep(3.0)
        status = await tablet.request(op("status", 21))
        assert status.body["result"] == "ok"
        progress = await tablet.recv()
        assert progress.body["state"] == "running" and progress.body["frames"] > 5
        process.kill()
        _, terminal = await tablet.until_terminal(within=30)
    assert terminal.body["status"] == [-4]
    assert "secret123" not in terminal.raw and "admin:***@" in terminal.body["msg"]
    session = terminal.body["session"]
    events = await anyio.to_thread.run_sync(server.recorder().events, session)
    assert "secret123" not in events[0].source
    assert events[0].source.startswith("rtsp://admin:***@")
    frames = terminal.body["frames"]
    assert frames > 5
    video = Path(events[0].video_path)
    observed = [e for e in events if isinstance(e, FrameObserved)]
    assert_recording(video, frames, 10, observed, live=True)


@pytest.mark.anyio
async def test_a_lane_slower_than_its_camera_is_not_a_lost_camera(
    tmp_path: Path, videos: Path
) -> None:
    """The grace counts the camera's silence, not the time the camera stage waits for room in
    the lane's full frame queue. Here the one lane's every frame waits 0.5 s for a batch
    partner that never comes (batches of 2, one lane): 2 frames a second against the camera's
    10, so the queue is full within about a second, and from then on the camera stage waits
    about 0.5 s per frame for room, longer than the 0.3 s grace. The camera is not lost."""
    media = tmp_path / "media"
    media.mkdir()
    shutil.copyfile(videos / CLIP, media / "clip.mp4")
    settings = Settings(
        data_dir=tmp_path,
        media_root=media,
        camera_grace_s=0.3,
        max_batch=2,
        max_wait_ms=500.0,
        inference_workers=1,
    )
    frames = 2 * FRAME_QUEUE  # the second half waits on a full queue
    async with khfsm.Site(settings) as site:
        lane = await site.prepare(
            "pushup", camera="clip.mp4", level=5, duration=frames / 10, fps=10, video="slow.mp4"
        )
        await lane.start()
        pushes = [push async for push in lane.progress()]
    final = pushes[-1]
    assert final.status == (-2,), final.message  # time is up, not -4
    assert final.details["frames"] == frames
