"""The seed trace (../shared/seeds/002): FaceDetection prepare/start/stop/stop, then pushup
prepare/start/…/stop/stop, with the tablet's leading codes, checking every field."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import anyio
import cv2
import numpy as np
import pytest

from khfsm.domain.events import (
    FaceChecked,
    FrameObserved,
    SessionEnded,
    SessionPrepared,
    SessionStarted,
    StopRequested,
)
from khfsm.domain.face import FACE_CHECK
from khfsm.domain.replay import replay
from khfsm.registry import get_exercise
from tests.conftest import unavailable
from tests.server.conftest import SHARED, RunningServer, assert_recording, connect

PUSH_KEYS = ["status", "total", "count", "time", "msg", "CaptureID", "Task", "session"]
SESSION_ID = re.compile(r"[0-9a-f]{32}")
FACE_CROP = re.compile(r"faces/\d{8}/\d{2}_\d{2}_\d{2}_tmp5447557840596578523_[0-9a-f]{8}\.jpg")


def face_material(media: Path) -> tuple[str, str]:
    """A photo and its enrolled vector at paths shaped like the tablet's."""
    photo_src = SHARED / "models" / "parity" / "images" / "astronaut.png"
    if not photo_src.is_file():
        unavailable(f"face photo {photo_src} not found (../shared/models/parity/images)")
    from khfsm.vision.face import load_face_analyzer

    image = cv2.imread(str(photo_src))
    assert image is not None
    photo = media / "tmp" / "tmp5447557840596578523.jpg"
    photo.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(photo), image)
    enrolled = media / "res" / "unit_8_8" / "rm_10" / "blb" / "8_10_15348_1" / "data.npy"
    enrolled.parent.mkdir(parents=True, exist_ok=True)
    np.save(enrolled, load_face_analyzer().embed(image))
    return str(photo), str(enrolled)


def exact_ack(code: int, capture_id: int, task: str, op: str, **extra: object) -> str:
    body = {"CaptureID": capture_id, "Task": task, "error": "", **extra, "op": op, "result": "ok"}
    return f"{code} " + json.dumps(body, separators=(",", ":"), sort_keys=True)


@pytest.mark.anyio
async def test_seed_trace_face_then_pushup(server: RunningServer) -> None:
    photo, enrolled = await anyio.to_thread.run_sync(face_material, server.media)
    face_fields = {"CapturePath": photo, "ModelPath": enrolled, "PicturePath": "", "SourceFile": ""}
    async with connect(server, "/ws/khpad") as tablet:
        # -- FaceDetection: 1001 prepare, 1002 start (filename), 1003 stop, 1004 stop
        prepare = {"Task": "FaceDetection", "Op": "prepare", "CaptureID": 10, **face_fields}
        ack = await tablet.request(prepare, code=1001)
        assert ack.raw == exact_ack(1001, 10, "FaceDetection", "prepare")

        start = {"Task": "FaceDetection", "Op": "start", "CaptureID": 10, "Duration": 120,
                 **face_fields}  # fmt: skip
        ack = await tablet.request(start, code=1002, within=60)
        filename = ack.body["filename"]
        # The crop's name is the server's to choose, but its shape is the protocol's: under
        # faces/<date>/, relative to the media root, named after the photo (and the session).
        assert FACE_CROP.fullmatch(filename), filename
        assert ack.raw == exact_ack(1002, 10, "FaceDetection", "start", filename=filename)
        assert (server.media / filename).is_file()
        assert cv2.imread(str(server.media / filename)) is not None

        push = await tablet.recv()
        assert push.code == 1111
        assert list(push.body)[: len(PUSH_KEYS)] == PUSH_KEYS
        assert push.body["status"] == [0]
        assert (push.body["total"], push.body["count"]) == (1, 1)
        assert push.body["time"] == [0.0, 0.0]
        assert push.body["CaptureID"] == 10 and push.body["Task"] == "FaceDetection"
        assert push.body["similarity"] >= push.body["threshold"]
        assert "matches" in push.body["msg"]
        face_session = push.body["session"]
        assert SESSION_ID.fullmatch(face_session)
        assert filename.endswith(f"_{face_session[:8]}.jpg")

        for code in (1003, 1004):  # the original answered "stop Action Task error": now ok
            ack = await tablet.request({"Task": "FaceDetection", "Op": "stop", "CaptureID": 10},
                                       code=code)  # fmt: skip
            assert ack.raw == exact_ack(code, 10, "FaceDetection", "stop")
        await tablet.silent(0.3)  # one terminal push per session, not repeated

        # -- pushup: 2001 prepare, 2002 start, pushes 2222, 2003 stop, 2004 stop
        video = str(server.media / "files" / "video" / "202101201905_12_2515_YS.mp4")
        prepare = {"Task": "pushup", "Op": "prepare", "CaptureID": 2, "CapturePath": "clip.mp4",
                   "ModelPath": video, "Duration": 122, "Fps": 20, "Level": 5}  # fmt: skip
        ack = await tablet.request(prepare, code=2001)
        # The seed's acks plus the readiness report (an added key the tablet ignores;
        # tests/server/test_readiness.py checks its content).
        readiness = ack.body["readiness"]
        assert ack.raw == exact_ack(2001, 2, "pushup", "prepare", readiness=readiness)
        ack = await tablet.request({"Task": "pushup", "Op": "start", "CaptureID": 2}, code=2002)
        assert ack.raw == exact_ack(2002, 2, "pushup", "start", readiness=readiness)

        rep = await tablet.recv(within=20)  # the clip's first push-up ends at about 7 s
        assert rep.code == 2222
        assert rep.raw.startswith('2222 {"status": [0], "total": 1, "count": 1, "time": [')
        assert list(rep.body) == PUSH_KEYS
        assert rep.body["msg"] == "" and rep.body["CaptureID"] == 2
        t0, t1 = rep.body["time"]
        assert 2.0 <= t0 < t1 <= 8.0 and round(t0, 1) == t0 and round(t1, 1) == t1
        session_id = rep.body["session"]
        assert SESSION_ID.fullmatch(session_id) and session_id != face_session

        await tablet.send({"Task": "pushup", "Op": "stop", "CaptureID": 2}, code=2003)
        terminal = await tablet.recv()  # the terminal push comes first, then the ack
        assert terminal.code == 2222
        assert list(terminal.body)[: len(PUSH_KEYS)] == PUSH_KEYS
        assert terminal.body["status"] == [-1]
        assert terminal.body["time"] == [0.0, 0.0]
        assert terminal.body["msg"] == "stopped by the operator"
        assert terminal.body["total"] >= 1 and terminal.body["count"] >= 1
        assert terminal.body["session"] == session_id
        ack = await tablet.ack()
        assert ack.raw == exact_ack(2003, 2, "pushup", "stop")
        ack = await tablet.request({"Task": "pushup", "Op": "stop", "CaptureID": 2}, code=2004)
        assert ack.raw == exact_ack(2004, 2, "pushup", "stop")
        await tablet.silent(0.3)

    # -- the stored sessions
    recorder = server.recorder()
    face_events = await anyio.to_thread.run_sync(recorder.events, face_session)
    assert [type(e) for e in face_events] == [
        SessionPrepared, SessionStarted, FaceChecked, SessionEnded,
    ]  # fmt: skip
    assert face_events[0].task == "FaceDetection"
    checked = face_events[2]
    assert isinstance(checked, FaceChecked) and checked.accepted and checked.filename == filename
    assert replay(face_events, FACE_CHECK).identical

    events = await anyio.to_thread.run_sync(recorder.events, session_id)
    prepared, ended = events[0], events[-1]
    assert isinstance(prepared, SessionPrepared) and isinstance(ended, SessionEnded)
    assert prepared.frames == 2440 and prepared.video_path == video
    assert ended.status == -1 and ended.frames == terminal.body["frames"]
    assert any(isinstance(e, StopRequested) for e in events)
    frames = [e.frame for e in events if isinstance(e, FrameObserved)]
    assert frames == list(range(ended.frames))
    observed = [e for e in events if isinstance(e, FrameObserved)]
    assert_recording(Path(video), ended.frames, 20, observed)
    data = await anyio.Path(video).read_bytes()
    assert ended.video_bytes == len(data)
    assert ended.video_sha256 == hashlib.sha256(data).hexdigest()
    report = replay(events, get_exercise("pushup"))
    assert report.identical, report.divergence and report.divergence.describe()
