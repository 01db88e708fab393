"""Readiness before the start over the real WebSocket server: the prepare and start acks say
what the camera sees (the push-up clip: a person, from a known camera view), the session
records what was reported, and replay keeps it and stays identical."""

from __future__ import annotations

from pathlib import Path

import anyio
import cv2
import numpy as np
import pytest
from khfsm.exercises.common.judging import Readiness

import khfsm
from khfsm.cli.tablet import Received, describe
from khfsm.domain.events import ReadinessReported, SessionPrepared, SessionStarted
from khfsm.domain.pose import Pose
from khfsm.domain.readiness import BODY_PARTS, NO_PERSON, VIEWS, ReadinessReport
from khfsm.domain.replay import replay
from khfsm.registry import get_exercise
from khfsm.server.readiness import look
from khfsm.settings import Settings
from tests.server.conftest import (
    CAMERA_GRACE_S,
    CLIP,
    RunningServer,
    connect,
    op,
    prepare_body,
    video_name,
)


def write_empty_scene(path: Path, frames: int = 30) -> None:
    """A short video of an empty grey room (no person), where the camera used to be."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for _ in range(frames):
        writer.write(np.full((240, 320, 3), 128, dtype=np.uint8))
    writer.release()


@pytest.mark.anyio
async def test_the_start_looks_at_the_camera_again(server: RunningServer) -> None:
    """The operator may wait long between prepare and start: the start's readiness is what
    the camera sees at the start, not a copy of the prepare's."""
    camera = server.media / "readiness_camera.mp4"
    camera.write_bytes((server.media / "clip.mp4").read_bytes())
    async with connect(server) as tablet:
        body = prepare_body(42, video_name("readiness-again"), 2, 10, CapturePath=camera.name)
        ack = await tablet.request(body)
        assert ack.body["result"] == "ok" and ack.body["readiness"]["person"] is True, ack.raw
        # The examinee walks away before the start: the lane's camera now shows nobody.
        await anyio.to_thread.run_sync(write_empty_scene, camera)
        start = await tablet.request(op("start", 42))
        assert start.body["result"] == "ok", start.raw
        assert start.body["readiness"]["person"] is False
        assert start.body["readiness"]["missing"] == [NO_PERSON]
        await tablet.send(op("stop", 42))  # its ack and the final push may come in either order
        _, terminal = await tablet.until_terminal(within=20)
    assert terminal.body["status"] == [-1]
    events = await anyio.to_thread.run_sync(server.recorder().events, terminal.body["session"])
    reported = [e for e in events if isinstance(e, ReadinessReported)]
    assert [(e.moment, e.person) for e in reported] == [("prepare", True), ("start", False)]


@pytest.mark.anyio
async def test_prepare_and_start_acks_report_readiness_and_the_session_records_it(
    server: RunningServer,
) -> None:
    async with connect(server, "/ws/khpad") as tablet:
        ack = await tablet.request(prepare_body(41, video_name("readiness"), 2, 10))
        assert ack.body["result"] == "ok", ack.raw
        seen = ack.body["readiness"]
        assert seen["person"] is True
        assert seen["view"] in VIEWS and seen["view"] != "unknown"
        assert set(seen["out_of_view"]) <= set(BODY_PARTS)
        assert isinstance(seen["in_position"], bool)  # pushup-2 declares a start position
        assert seen["summary"].startswith("person in view (")
        start = await tablet.request(op("start", 41))
        assert start.body["result"] == "ok" and start.body["readiness"] == seen
        _, terminal = await tablet.until_terminal(within=20)
        session_id = terminal.body["session"]

    events = await anyio.to_thread.run_sync(server.recorder().events, session_id)
    kinds = [type(e) for e in events[:4]]
    assert kinds == [SessionPrepared, ReadinessReported, SessionStarted, ReadinessReported]
    at_prepare, at_start = events[1], events[3]
    assert isinstance(at_prepare, ReadinessReported) and isinstance(at_start, ReadinessReported)
    assert (at_prepare.moment, at_start.moment) == ("prepare", "start")
    assert at_prepare.report().as_ack() == seen
    assert at_start.report() == at_prepare.report()
    report = replay(events, get_exercise("pushup"))
    assert report.identical, report.divergence and report.divergence.describe()


def test_the_tablet_cli_prints_readiness_in_one_line() -> None:
    report = ReadinessReport(True, ("ankles",), False, ("ankles not in view",), "side")
    body = {"CaptureID": 1, "Task": "pushup", "error": "", "op": "prepare", "result": "ok"}
    line = describe(Received(None, {**body, "readiness": report.as_ack()}))
    assert line.splitlines() == [
        "ack   pushup/1 prepare: ok",
        "      camera sees: person in view (side view), out of view: ankles; "
        "not in the start position: ankles not in view",
    ]
    assert describe(Received(None, body)) == "ack   pushup/1 prepare: ok"


class BrokenStartPosition:
    """A plug-in whose start-position function fails: readiness must not fail the prepare."""

    def start_position(
        self, pose: Pose | None, width: int = 0, height: int = 0, level: int = 5
    ) -> Readiness:
        raise RuntimeError("a bug in a plug-in")


@pytest.mark.anyio
async def test_the_look_reports_the_first_frame_with_a_person_and_never_raises(
    tmp_path: Path, videos: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    capture = cv2.VideoCapture(str(videos / CLIP))
    ok, person = capture.read()
    capture.release()
    assert ok
    empty = np.zeros_like(person)  # a camera looking at nothing (or not yet decoded)
    settings = Settings(data_dir=tmp_path, media_root=media, camera_grace_s=CAMERA_GRACE_S)
    async with khfsm.Site(settings) as site:
        ctx = site.registry.ctx
        nobody = await look(ctx, ("pushup", 9), [empty], 5, get_exercise("pushup"))
        assert nobody is not None and not nobody.person and nobody.missing == (NO_PERSON,)
        found = await look(ctx, ("pushup", 9), [empty, person], 5, get_exercise("pushup"))
        assert found is not None and found.person and found.view != "unknown"
        assert await look(ctx, ("pushup", 9), [person], 5, BrokenStartPosition()) is None
