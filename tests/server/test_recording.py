"""The evidence recording: the camera's own packets remuxed (every camera frame, each assessed
frame's presentation time stored with its keypoints), a camera that changes resolution or
sends a broken packet, the encoder kept for MJPEG, and events with and without `pts`.

Real server lanes (tests/server/conftest.py), real clips, real PyAV. That the remuxed recording
plays and seeks in Chromium: tests/browser/test_recording_plays_in_chromium.py."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path
from typing import Any

import anyio
import av
import numpy as np
import pytest

from khfsm.domain.codec import EventRecord, decode, encode
from khfsm.domain.events import FrameObserved, SessionEnded
from khfsm.domain.replay import replay
from khfsm.registry import get_exercise
from khfsm.server.camera import Camera
from khfsm.server.paths import CameraSource, SourceKind
from khfsm.server.recording import PacketRecorder
from khfsm.vision.media import DecodedPicture
from khfsm.vision.pose import PoseTracker
from tests.server.conftest import (
    CLIP,
    RunningServer,
    assert_recording,
    connect,
    decode_video,
    op,
    prepare_body,
    video_name,
)


def frames_by_time(path: Path) -> dict[float, np.ndarray]:
    """Every decodable frame of `path` (BGR), by presentation time in seconds."""
    out: dict[float, np.ndarray] = {}
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            assert frame.pts is not None and frame.time_base is not None
            out[round(float(frame.pts * frame.time_base), 4)] = frame.to_ndarray(format="bgr24")
    return out


def pictures_by_time(path: Path) -> dict[float, DecodedPicture]:
    """Every decodable frame of `path` as the server and `khfsm pose` take it, by time."""
    out: dict[float, DecodedPicture] = {}
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            assert frame.pts is not None and frame.time_base is not None
            out[round(float(frame.pts * frame.time_base), 4)] = DecodedPicture(frame)
    return out


def digest(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


async def run_lane(
    server: RunningServer, capture_id: int, camera: str, duration: float, fps: int
) -> tuple[dict[str, Any], list[Any], Path]:
    video = video_name(f"rec{capture_id}")
    async with connect(server) as tablet:
        ack = await tablet.request(
            prepare_body(capture_id, video, duration, fps, CapturePath=camera)
        )
        assert ack.body["result"] == "ok", ack.raw
        await tablet.request(op("start", capture_id))
        _, terminal = await tablet.until_terminal(within=60)
    events = await anyio.to_thread.run_sync(server.recorder().events, terminal.body["session"])
    return terminal.body, events, server.media / video


def encode_clip(
    target: Path, sizes: list[tuple[int, int]], seconds: float, codec: str = "libx264"
) -> None:
    """A synthetic clip (a box moving), `seconds` at each of `sizes` in turn, 25 fps; raw
    H.264 (Annex B) when `target` ends in .h264, so the parts simply follow each other."""
    parts: list[bytes] = []
    for width, height in sizes:
        part = target.with_suffix(f".{width}{target.suffix}")
        fmt = "h264" if target.suffix == ".h264" else None
        with av.open(str(part), "w", format=fmt) as out:
            stream = out.add_stream(codec, rate=25)
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuv420p" if codec == "libx264" else "yuvj420p"
            if codec == "libx264":
                stream.codec_context.options = {"bf": "0", "g": "25"}
            for index in range(round(seconds * 25)):
                image = np.full((height, width, 3), 60, dtype=np.uint8)
                x = index * 4 % max(1, width - 40)
                image[height // 3 : height // 3 + 40, x : x + 40] = (0, 200, 255)
                frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                frame.pts = index
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        parts.append(part.read_bytes())
        part.unlink()
    target.write_bytes(b"".join(parts))


@pytest.mark.anyio
async def test_remuxed_recording_holds_every_camera_frame_and_each_assessed_ones_time(
    server: RunningServer, videos: Path
) -> None:
    duration, fps = 2.0, 10  # the clip is 25 fps with B-frames: 2 of 5 camera frames unassessed
    body, events, video = await run_lane(server, 40, "clip.mp4", duration, fps)
    assert body["status"] == [-2] and body["frames"] == 20
    observed = [e for e in events if isinstance(e, FrameObserved)]
    recorded = assert_recording(video, 20, fps, observed)
    # The recording is the camera's own frames over its span: same count, same timestamps
    # (shifted by the first keyframe's decode delay) and the very same pictures.
    source = frames_by_time(server.media / "clip.mp4")
    source_times = sorted(source)
    shift = recorded[0] - source_times[0]
    assert [round(t + shift, 4) for t in source_times[: len(recorded)]] == [
        round(t, 4) for t in recorded
    ]
    assert recorded[-1] >= observed[-1].pts + 1.5  # the tail past the last assessed frame
    in_video = frames_by_time(video)
    for k, event in enumerate(observed):
        # assessed frame k is the first camera frame at or after k / Fps
        camera_index = math.ceil(k * 25 / fps - 1e-9)
        assert event.pts == pytest.approx(source_times[camera_index] + shift, abs=1e-6)
        assert digest(in_video[round(event.pts, 4)]) == digest(
            source[round(source_times[camera_index], 4)]
        )
    # The skeleton stored for frame 0 is the pose of the video's frame at that time, taken
    # from the recording as `khfsm pose` takes it.
    first = observed[0].pose()
    picture = pictures_by_time(video)[round(observed[0].pts, 4)]
    estimate = PoseTracker().process(picture.for_pose())
    assert first is not None and estimate is not None
    assert np.array_equal(first.landmarks, estimate.landmarks)
    assert replay(events, get_exercise("pushup")).identical
    ended = events[-1]
    assert isinstance(ended, SessionEnded)
    assert ended.video_sha256 == hashlib.sha256(video.read_bytes()).hexdigest()


@pytest.mark.anyio
async def test_a_camera_that_changes_resolution_goes_on(server: RunningServer) -> None:
    clip = server.media / "resized.h264"
    encode_clip(clip, [(320, 240), (480, 360)], 1.0)
    body, events, video = await run_lane(server, 41, "resized.h264", 3.0, 10)
    assert body["status"] in ([-2], [-4])  # the file ends after 2 s: -4, never -5
    observed = [e for e in events if isinstance(e, FrameObserved)]
    assert len(observed) == body["frames"] >= 19
    times = decode_video(video)
    assert all(round(e.pts, 4) in {round(t, 4) for t in times} for e in observed)


@pytest.mark.anyio
async def test_a_broken_packet_mid_session_is_skipped(server: RunningServer) -> None:
    clip = server.media / "broken.h264"
    encode_clip(clip, [(320, 240)], 3.0)  # three groups of pictures, 25 frames each
    data = bytearray(clip.read_bytes())
    # The second group's sequence parameter set garbled: that packet does not decode (the
    # decoder refuses it, as it refuses a camera's packet cut short by a dropped RTP packet)
    # and its group is lost; the third group decodes again and is assessed.
    sps = [
        i
        for i in range(len(data) - 4)
        if data[i : i + 4] == b"\0\0\0\1" and data[i + 4] & 0x1F == 7
    ]
    data[sps[1] + 5 : sps[1] + 13] = b"\xff" * 8
    clip.write_bytes(bytes(data))
    body, events, video = await run_lane(server, 42, "broken.h264", 3.0, 10)
    assert body["status"] in ([-2], [-4]), body  # never -5
    assert body["frames"] >= 19  # 51 of the 75 frames decode: 2 s at 10 fps
    # The recording keeps the broken packet (it is the camera's evidence); a player skips
    # it, and every assessed frame, those after it too, is in the recording at its time.
    observed = [e for e in events if isinstance(e, FrameObserved)]
    assert len(observed) == body["frames"]
    recorded = {round(t, 4) for t in decode_video(video)}
    assert [e.frame for e in observed if round(e.pts, 4) not in recorded] == []


@pytest.mark.anyio
async def test_mjpeg_camera_is_recorded_by_encoding(server: RunningServer) -> None:
    clip = server.media / "webcam.avi"
    encode_clip(clip, [(320, 240)], 2.0, codec="mjpeg")
    body, events, video = await run_lane(server, 43, "webcam.avi", 1.5, 10)
    assert body["status"] == [-2] and body["frames"] == 15
    observed = [e for e in events if isinstance(e, FrameObserved)]
    # the encoder's video holds exactly the assessed frames, frame k at k / Fps
    assert [round(e.pts, 4) for e in observed] == [round(k / 10, 4) for k in range(15)]
    assert [round(t, 4) for t in decode_video(video)] == [round(k / 10, 4) for k in range(15)]
    with av.open(str(video)) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_frame_observed_without_pts_encodes_as_before_and_with_it_round_trips() -> None:
    old = EventRecord("FrameObserved", 1, '{"frame":3,"score":0.0}', None)
    event = decode(old)
    assert isinstance(event, FrameObserved) and event.pts is None
    assert encode(event) == old  # same bytes, so the same hash as when it was stored
    timed = FrameObserved.of(3, None, pts=0.12)
    assert decode(encode(timed)) == timed
    assert json.loads(encode(timed).payload)["pts"] == 0.12


def record_directly(source: Path, target: Path, frames: int) -> list[float]:
    """Read `frames` frames with Camera and remux every packet with PacketRecorder."""
    camera = Camera(CameraSource(SourceKind.FILE, str(source), str(source)))
    camera.open()
    recorder: PacketRecorder | None = None
    times: list[float] = []
    try:
        for _ in range(frames):
            frame = camera.read()
            assert frame is not None and frame.pts is not None
            if recorder is None:
                assert camera.stream is not None
                recorder = PacketRecorder(target, camera.stream)
                recorder.open()
            recorder.write(frame.packets)
            times.append(frame.pts)
        assert recorder is not None
        recorder.write(camera.tail(times[-1]))
        recorder.close()
    finally:
        camera.close()
    return times


def test_a_copy_taken_mid_write_decodes(server: RunningServer, tmp_path: Path) -> None:
    source = server.media / "clip.mp4"
    camera = Camera(CameraSource(SourceKind.FILE, str(source), str(source)))
    camera.open()
    target, copy = tmp_path / "evidence.mp4", tmp_path / "copy.mp4"
    recorder: PacketRecorder | None = None
    try:
        for _ in range(80):  # 3.2 s
            frame = camera.read()
            assert frame is not None
            if recorder is None:
                assert camera.stream is not None
                recorder = PacketRecorder(target, camera.stream)
                recorder.open()
            recorder.write(frame.packets)
        shutil.copyfile(target, copy)  # still being written: no end, no index
        assert recorder is not None
        recorder.close()
    finally:
        camera.close()
    partial, full = decode_video(copy), decode_video(target)
    assert len(partial) >= 50  # 1 s fragments: all but the last second
    assert partial == full[: len(partial)]


def test_a_lazy_frame_is_the_same_picture_converted_when_first_used(videos: Path) -> None:
    """Lanes read lazily and convert only the frames they assess: the pictures must be the
    ones an eager read gives, and the packets and times must not depend on it."""
    source = videos / CLIP
    eager, lazy = (Camera(CameraSource(SourceKind.FILE, str(source), str(source))) for _ in "ab")
    try:
        eager.open(), lazy.open()
        for index in range(12):
            a, b = eager.read(), lazy.read(lazy=True)
            assert a is not None and b is not None
            assert (a.timestamp, a.pts, len(a.packets)) == (b.timestamp, b.pts, len(b.packets))
            if index % 5 == 4:  # one in five never converted, as a lane skips it
                continue
            assert np.array_equal(a.image, b.convert())
            assert b.image is b.convert()  # converted once
    finally:
        eager.close(), lazy.close()


@pytest.mark.anyio
@pytest.mark.parametrize("codec", ["libx264", "mjpeg"])  # remuxed, encoded
async def test_a_video_that_appears_after_the_prepare_is_never_overwritten(
    server: RunningServer, codec: str
) -> None:
    """Servers sharing a media root each refuse a ModelPath that exists at prepare, but two
    can accept the same new one. The second to record finds the first's file: its test ends
    -5 saying so, and the file (the other test's evidence) stays byte for byte."""
    camera = f"taken_{codec}.avi"
    encode_clip(server.media / camera, [(320, 240)], 2.0, codec=codec)
    video = video_name("taken")
    async with connect(server) as tablet:
        ack = await tablet.request(prepare_body(47, video, 1.5, 10, CapturePath=camera))
        assert ack.body["result"] == "ok", ack.raw
        evidence = server.media / video  # what the other server began to record meanwhile
        evidence.parent.mkdir(parents=True, exist_ok=True)
        evidence.write_bytes(b"another server's recording")
        await tablet.request(op("start", 47))
        _, terminal = await tablet.until_terminal(within=60)
    assert terminal.body["status"] == [-5], terminal.raw
    assert terminal.body["msg"] == (
        f"internal error: ModelPath {video} was created by another lane after the prepare "
        "(another server on this media root?); this test was not recorded and that file was "
        "left as it is"
    )
    assert evidence.read_bytes() == b"another server's recording"
    events = await anyio.to_thread.run_sync(server.recorder().events, terminal.body["session"])
    ended = events[-1]
    assert isinstance(ended, SessionEnded) and ended.video_sha256 is None
