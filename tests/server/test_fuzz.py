"""Property-based fuzzing of the tablet protocol against a real server, with a legitimate
lane running beside it.

Hypothesis sends sequences of frames: any JSON value in any field, huge and negative
numbers, NaN and Infinity, lone surrogates, deep nesting, sizes up to and past the limit,
codes, binary frames. Every frame must be answered with one JSON ack (or, past the hard size
limit, a close with 1009), no reply may hold a traceback, and the server must stay up. The
legitimate lane (a real clip as its camera, on its own connection) must end on its own at
time up with every assessed frame stored and `khfsm verify` passing: with lane ownership on,
no fuzzed stop can end it.

Bounded: about a minute (`max_examples` below); peak memory of the process is printed.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from khfsm.domain.events import FrameObserved, SessionEnded
from tests.server.conftest import RunningServer, parse, prepare_body, running_server

MAX_MESSAGE = 16384
HARD_LIMIT = MAX_MESSAGE * 16
LEGIT_ID = 1
LEGIT_SECONDS = 12.0


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory, videos: Path) -> Iterator[RunningServer]:
    with running_server(
        tmp_path_factory.mktemp("khfsm-fuzz"),
        videos,
        lane_ownership=True,
        max_message_bytes=MAX_MESSAGE,
        max_lanes=6,
        max_lanes_per_connection=2,
        max_duration_s=15,
    ) as running:
        yield running


# -- what the fuzzer sends ----------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["clip.mp4", "rtsp://[::1", "rtsp://a:pw@h:99999/x", "device:9" * 3])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["Task", "Op", "CaptureID", "CapturePath", "ModelPath", "Duration", "Fps", "Level",
          "PicturePath", "SourceFile", "Token"]  # fmt: skip
tasks = st.sampled_from(["pushup", "situp", "FaceDetection", "metronome"]) | json_values
ops = st.sampled_from(["prepare", "start", "stop", "status"]) | json_values
capture_ids = st.integers(min_value=0, max_value=20) | json_values


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"Task": draw(tasks), "Op": draw(ops), "CaptureID": draw(capture_ids)}
    if draw(st.booleans()):  # a plausible prepare with some fields changed
        body.update(
            prepare_body(draw(st.integers(0, 20)), f"video/fz{draw(st.integers(0, 9))}.mp4", 3, 10)
        )
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        body[field] = draw(json_values)
    return body


@st.composite
def frames(draw: st.DrawFn) -> str | bytes:
    kind = draw(st.sampled_from(["request", "request", "request", "raw", "surrogate", "nested",
                                 "huge", "binary"]))  # fmt: skip
    if kind == "request":
        text = json.dumps(draw(requests()), allow_nan=True)
    elif kind == "raw":
        text = draw(st.text(max_size=200))
    elif kind == "surrogate":  # a lone surrogate in a field the ack would echo, or a key
        body = draw(requests())
        body[draw(st.sampled_from([*FIELDS, "SRGT"]))] = "SRGT"
        lone = draw(st.sampled_from(["\\ud800", "\\udfff", "\\udc80"]))
        text = json.dumps(body).replace('"SRGT"', f'"a{lone}b"')
    elif kind == "nested":
        depth = draw(st.integers(1, 5000))
        text = '{"Task":"pushup","Op":"status","CaptureID":' + "[" * depth + "]" * depth + "}"
    elif kind == "huge":
        size = draw(st.sampled_from([MAX_MESSAGE - 100, MAX_MESSAGE + 1, HARD_LIMIT + 1]))
        text = '{"Task":"pushup","Op":"status","CaptureID":"' + "9" * size + '"}'
    else:
        return draw(st.binary(max_size=64))
    if draw(st.booleans()):
        text = f"{draw(st.integers(0, 10**9))}{draw(st.sampled_from([' ', '', '  ']))}{text}"
    return text


# -- the legitimate lane ------------------------------------------------------------------------


class LegitLane(threading.Thread):
    """A tablet that prepares, starts and follows one lane until its terminal push."""

    def __init__(self, server: RunningServer) -> None:
        super().__init__(name="legit-lane", daemon=True)
        self.server = server
        self.terminal: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.started_ok = threading.Event()

    def run(self) -> None:
        try:
            with connect(self.server.ws_url, max_size=None) as ws:
                body = prepare_body(LEGIT_ID, "video/legit.mp4", LEGIT_SECONDS, 10)
                assert _ack(ws, body)["result"] == "ok"
                assert (
                    _ack(ws, {"Task": "pushup", "Op": "start", "CaptureID": LEGIT_ID})["result"]
                    == "ok"
                )
                self.started_ok.set()
                while self.terminal is None:
                    message = parse(str(ws.recv(timeout=60)))
                    if message.terminal:
                        self.terminal = message.body
        except BaseException as error:  # reported by the test
            self.error = error
            self.started_ok.set()


def _ack(ws: ClientConnection, body: dict[str, Any]) -> dict[str, Any]:
    ws.send(json.dumps(body))
    while True:
        message = parse(str(ws.recv(timeout=30)))
        if message.is_ack:
            return message.body


# -- the test ----------------------------------------------------------------------------------


def exchange(server: RunningServer, sequence: list[str | bytes]) -> None:
    """Send `sequence` on one connection; each frame gets one well-formed ack."""
    with connect(server.ws_url, max_size=None, open_timeout=30) as ws:
        for frame in sequence:
            ws.send(frame)
            try:
                while True:  # pushes of lanes the fuzzer prepared may come in between
                    raw = str(ws.recv(timeout=30))
                    assert "Traceback" not in raw and 'File "' not in raw, raw[:300]
                    message = parse(raw)
                    if message.is_ack:
                        break
            except ConnectionClosed as closed:
                assert len(frame) > HARD_LIMIT, (frame[:100], closed)
                assert closed.rcvd is not None and closed.rcvd.code == 1009
                return
            body = message.body
            assert body["result"] in ("ok", "error")
            assert body["error"] != "internal error in the server", (frame[:200], body)
            assert len(raw) < 4000, (frame[:100], len(raw))


def test_fuzzed_frames_never_break_the_server_or_the_legitimate_lane(
    fuzz_server: RunningServer,
) -> None:
    legit = LegitLane(fuzz_server)
    legit.start()
    assert legit.started_ok.wait(60) and legit.error is None, legit.error

    @settings(
        max_examples=250,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(st.lists(frames(), min_size=1, max_size=8))
    def fuzz(sequence: list[str | bytes]) -> None:
        exchange(fuzz_server, sequence)

    fuzz()
    legit.join(timeout=60)
    assert legit.error is None, legit.error
    terminal = legit.terminal
    assert terminal is not None and terminal["status"][0] >= -2, terminal  # time up, no stop
    assert fuzz_server.health()["status"] == "ok"

    session = terminal["session"]
    events = fuzz_server.recorder().events(session)
    assert isinstance(events[-1], SessionEnded)
    assert sum(isinstance(e, FrameObserved) for e in events) == terminal["frames"] > 0
    verify = subprocess.run(
        [str(Path(sys.executable).with_name("khfsm")), "verify", session,
         "--database-url", fuzz_server.database_url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nfuzz: peak RSS of the test process (server included) {peak_mb:.0f} MB")
