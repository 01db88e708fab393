"""Hostile and oversized requests, the site's limits and its optional authority.

A real server with narrow limits, a tablet token, an operator token, an Origin allow-list
and lane ownership. Every refusal is a clear error ack that still names the request's lane
(CaptureID, Task) where it could be read, and the connection stays open.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import websockets

from tests.server.conftest import (
    RunningServer,
    Tablet,
    connect,
    op,
    prepare_body,
    running_server,
    video_name,
)

TOKEN = "tablet-Tk5secret"
OPERATOR = "operator-Op7secret"
MAX_MESSAGE = 8192


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, videos: Path) -> Iterator[RunningServer]:
    with running_server(
        tmp_path_factory.mktemp("khfsm-limits"),
        videos,
        max_lanes=3,
        max_lanes_per_connection=2,
        max_duration_s=100,
        max_fps=20,
        max_message_bytes=MAX_MESSAGE,
        tablet_token=TOKEN,
        operator_token=OPERATOR,
        tablet_allowed_origins=["https://exam.example"],
        lane_ownership=True,
    ) as running:
        yield running


class tablet_of:
    def __init__(self, server: RunningServer, token: str | None = TOKEN, **options: Any):
        query = f"?token={token}" if token else ""
        self.url = f"{server.ws_url}/{query}"
        self.options = options

    async def __aenter__(self) -> Tablet:
        self._cm = websockets.connect(self.url, max_size=None, **self.options)
        return Tablet(await self._cm.__aenter__())

    async def __aexit__(self, *exc: Any) -> None:
        await self._cm.__aexit__(*exc)


def body_text(**fields: Any) -> str:
    return json.dumps({**op("status", 7), **fields}, separators=(",", ":"))


PREPARE = prepare_body(7, "video/x.mp4", 30, 10)
NESTED = "[" * 40 + "]" * 40

# (raw frame, expected error fragment, echoed CaptureID, echoed Task)
HOSTILE: list[tuple[str, str, Any, Any]] = [
    (body_text(CaptureID=2**63), "CaptureID must be <= 2147483647", None, "pushup"),
    (body_text(CaptureID=2**40), "CaptureID must be <= 2147483647", 2**40, "pushup"),
    (body_text(CaptureID=-5), "CaptureID must be >= 0", -5, "pushup"),
    (json.dumps({**PREPARE, "ModelPath": "a" * 300 + ".mp4"}), "name of 304 bytes", 7, "pushup"),
    (json.dumps({**PREPARE, "ModelPath": "a/" * 600}), "at most 1024", 7, "pushup"),
    (json.dumps({**PREPARE, "CapturePath": "rtsp://[::1"}), "is not a valid URL", 7, "pushup"),
    (json.dumps({**PREPARE, "CapturePath": "rtsp://h:99999/x"}), "not a valid URL", 7, "pushup"),
    (json.dumps({**PREPARE, "CapturePath": 2**63}), "device index is 0 to 255", 7, "pushup"),
    (json.dumps({**PREPARE, "CapturePath": 256}), "device index is 0 to 255", 7, "pushup"),
    (
        json.dumps({**PREPARE, "CapturePath": "device:" + "9" * 30}),
        "named by its index",
        7,
        "pushup",
    ),
    (json.dumps({**PREPARE, "Duration": 101}), "longer than this site allows", 7, "pushup"),
    (json.dumps({**PREPARE, "Fps": 25}), "higher than this site allows", 7, "pushup"),
    (json.dumps({**PREPARE, "Fps": -1}), "Fps must be > 0", 7, "pushup"),
    (json.dumps({**PREPARE, "Level": 10**30}), "Level must be <= 5", 7, "pushup"),
    (json.dumps(PREPARE).replace("30", "NaN", 1), "NaN is not a number", None, None),
    (json.dumps(PREPARE).replace("30", "Infinity", 1), "Infinity is not a number", None, None),
    (json.dumps(PREPARE).replace("30", "1e400", 1), "too large", None, None),
    (json.dumps(PREPARE).replace("30", "9" * 5000, 1), "unreadable number", None, None),
    (body_text(Extra=json.loads(NESTED)), "nested more than", None, None),
    ("[" * 3000, "not JSON", None, None),
    ('{"Task":"\\ud800","Op":"status","CaptureID":7}', "lone UTF-16 surrogate", None, None),
    ('{"Task":"pushup","Op":"status","CaptureID":"\\udfff"}', "lone UTF-16", None, None),
    (body_text(Task="x" * 3000), "Task is 3000 characters long; at most 64", 7, "x" * 200),
    (body_text(Op={"a": [1, 2]}), "Op", 7, "pushup"),
    ("[1, 2]", "expected a JSON object", None, None),
    ("x" * (MAX_MESSAGE + 1), f"at most {MAX_MESSAGE}", None, None),
]


@pytest.mark.anyio
async def test_hostile_requests_get_clear_errors_and_keep_the_connection(
    limited: RunningServer,
) -> None:
    async with tablet_of(limited) as tablet:
        for raw, fragment, capture_id, task in HOSTILE:
            ack = await tablet.request(raw, code=2001)
            assert ack.body["result"] == "error", raw[:80]
            error = ack.body["error"]
            assert fragment in error, (raw[:80], error)
            assert "internal error" not in error and "Traceback" not in ack.raw
            assert ack.body["CaptureID"] == capture_id, (raw[:80], ack.body)
            got_task = ack.body["Task"]
            assert got_task == task or (isinstance(task, str) and got_task.startswith(task))
            # An echo is bounded: never the whole bad value, never twice.
            assert len(ack.raw) < 1500, (raw[:80], len(ack.raw))
        ack = await tablet.request(op("status", 7))  # the connection still works
        assert "has no session" in ack.body["error"]


@pytest.mark.anyio
async def test_a_frame_far_over_the_limit_closes_the_connection(limited: RunningServer) -> None:
    async with tablet_of(limited) as tablet:
        await tablet.send("x" * (MAX_MESSAGE * 16 + 1))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await tablet.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big


@pytest.mark.anyio
async def test_lanes_per_connection_and_per_server(limited: RunningServer) -> None:
    async with tablet_of(limited) as first, tablet_of(limited) as second:
        for capture_id in (11, 12):
            ack = await first.request(prepare_body(capture_id, video_name("lim"), 30, 10))
            assert ack.body["result"] == "ok", ack.body
        ack = await first.request(prepare_body(13, video_name("lim"), 30, 10))
        assert "this connection already has 2 lanes" in ack.body["error"]
        assert "max_lanes_per_connection" in ack.body["error"]
        ack = await second.request(prepare_body(14, video_name("lim"), 30, 10))
        assert ack.body["result"] == "ok", ack.body
        ack = await second.request(prepare_body(15, video_name("lim"), 30, 10))
        assert "this server already has 3 lanes" in ack.body["error"]
        assert (ack.body["CaptureID"], ack.body["Task"]) == (15, "pushup")
        # lane ownership: the second tablet may not stop the first one's lane
        ack = await second.request(op("stop", 11))
        assert "prepared by another connection" in ack.body["error"]
        ack = await second.request(op("start", 11))
        assert "prepared by another connection" in ack.body["error"]
        for tablet, capture_id in ((first, 11), (first, 12), (second, 14)):
            await tablet.send(op("stop", capture_id))
            _, terminal = await tablet.until_terminal()
            assert terminal.body["status"] == [-1]
            assert (await tablet.ack()).body["result"] == "ok"
        # room again
        ack = await second.request(prepare_body(15, video_name("lim"), 30, 10))
        assert ack.body["result"] == "ok", ack.body
        # the operator may stop any lane
        async with tablet_of(limited, token=OPERATOR) as operator:
            await operator.send(op("stop", 15))
            _, terminal = await operator.until_terminal()
            assert terminal.body["status"] == [-1]
            assert (await operator.ack()).body["result"] == "ok"


@pytest.mark.anyio
async def test_the_tablet_token_is_required(limited: RunningServer) -> None:
    async with tablet_of(limited, token=None) as stranger:
        ack = await stranger.request(op("status", 7))
        assert "requires the site's tablet token" in ack.body["error"]
        assert (ack.body["CaptureID"], ack.body["Task"]) == (7, "pushup")
        ack = await stranger.request({**op("status", 7), "Token": "wrong"})
        assert "requires the site's tablet token" in ack.body["error"]
        ack = await stranger.request({**op("status", 7), "Token": TOKEN})
        assert "has no session" in ack.body["error"]  # admitted from now on
        ack = await stranger.request(op("status", 7))
        assert "has no session" in ack.body["error"]


@pytest.mark.anyio
async def test_an_origin_not_allowed_is_refused_at_the_handshake(limited: RunningServer) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with tablet_of(limited, origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    async with tablet_of(limited, origin="https://exam.example") as tablet:
        ack = await tablet.request(op("status", 7))
        assert "has no session" in ack.body["error"]


def test_origins_and_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from khfsm.settings import load_settings

    monkeypatch.setenv("KHFSM_TABLET_ALLOWED_ORIGINS", "https://a.example, https://b.example/")
    monkeypatch.setenv("KHFSM_TABLET_TOKEN", "Tk9secret")
    settings = load_settings()
    assert settings.tablet_allowed_origins == ["https://a.example", "https://b.example"]
    assert settings.tablet_token is not None and "Tk9secret" not in repr(settings)


@pytest.mark.anyio
async def test_requests_naming_many_lanes_leave_nothing_behind(limited: RunningServer) -> None:
    registry = limited.app.state.site.registry
    before = (len(registry.lanes), len(registry._locks))
    async with tablet_of(limited) as tablet:
        for capture_id in range(100_000, 102_000):
            await tablet.send(op("stop" if capture_id % 2 else "status", capture_id))
        for _ in range(2000):
            assert (await tablet.ack()).body["result"] == "error"
    assert (len(registry.lanes), len(registry._locks)) == before


@pytest.mark.anyio
async def test_a_lane_prepared_and_never_started_ends_and_frees_its_place(
    tmp_path: Path, videos: Path
) -> None:
    with running_server(tmp_path, videos, prepared_timeout_s=1.0, max_lanes=1) as server:
        async with connect(server) as tablet:
            ack = await tablet.request(prepare_body(21, video_name("abandoned"), 30, 10))
            assert ack.body["result"] == "ok", ack.body
        # the tablet has gone; the prepare it left ends on its own
        async with connect(server) as tablet:
            terminal = None
            with anyio.fail_after(30):
                while terminal is None:
                    await tablet.send(op("status", 21))
                    with anyio.move_on_after(0.5):
                        while terminal is None:
                            message = await tablet.recv()
                            terminal = message if message.terminal else None
            assert terminal.body["status"] == [-1]
            await tablet.send(prepare_body(22, video_name("next"), 30, 10))
            while not ((ack := await tablet.recv()).is_ack and ack.body["op"] == "prepare"):
                pass  # the status replies and pushes sent meanwhile
            assert ack.body["result"] == "ok", ack.body  # its place (max_lanes=1) is free
            await tablet.send(op("stop", 22))
            await tablet.until_terminal()
