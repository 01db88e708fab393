"""Readiness before the start over the real WebSocket server: the prepare and start acks say
what the camera sees (the push-up clip: a person, from a known camera view), the session
records what was reported, and replay keeps it and stays identical."""

from __future__ import annotations

import anyio
import pytest

from khfsm.cli.tablet import Received, describe
from khfsm.domain.events import ReadinessReported, SessionPrepared, SessionStarted
from khfsm.domain.readiness import BODY_PARTS, VIEWS, ReadinessReport
from khfsm.domain.replay import replay
from khfsm.registry import get_exercise
from tests.server.conftest import RunningServer, connect, op, prepare_body, video_name


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
