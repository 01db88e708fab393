"""A refused prepare is one INFO line in the server's log, naming the lane and the reason:
the operator at the tablet reads the ack, whoever reads the log later sees it too."""

from __future__ import annotations

import logging

import pytest

from tests.server.conftest import RunningServer, connect, prepare_body, video_name

CAPTURE = 41


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("camera", "reason"),
    [
        ("missing.mp4", "missing.mp4 does not exist"),
        ("../outside.mp4", "name a file under the media root"),
        ("rtsp://127.0.0.1:9/cam", "cannot open camera rtsp://127.0.0.1:9/cam"),
    ],
)
async def test_a_refused_prepare_is_logged_once_with_lane_and_reason(
    camera: str, reason: str, server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="khfsm")
    async with connect(server) as tablet:
        ack = await tablet.request(
            prepare_body(CAPTURE, video_name("refused"), 30, CapturePath=camera)
        )
    assert ack.body["result"] == "error" and reason in ack.body["error"]
    refused = [r for r in caplog.records if "prepare refused" in r.getMessage()]
    assert len(refused) == 1, [r.getMessage() for r in refused]
    [record] = refused
    assert record.levelno == logging.INFO
    assert record.getMessage() == f"pushup capture {CAPTURE}: prepare refused: {ack.body['error']}"
