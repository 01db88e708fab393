"""A real khfsm server (uvicorn in a background thread) and a WebSocket tablet client.

The server runs on a free port with a temporary SQLite store and media root; the shared
clip is copied into the media root (never into the repository: a symlink out of the media
root is refused like any other path outside it). One server
serves the whole module set: loading the models once keeps the suite short.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets

from khfsm.settings import Settings
from tests.conftest import unavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared"
CLIP = "pushup_01_div_perfect_pushup_2.mp4"  # 4 slow push-ups, first one done at ~6.8 s
CAMERA_GRACE_S = 1.0
_CODED = re.compile(r"(\d+)(\s+)(\{.*)\Z", re.S)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    port: int
    media: Path
    database_url: str
    app: Any
    log: list[str] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self, **params: Any) -> dict[str, Any]:
        response = httpx.get(f"{self.http_url}/healthz", params=params, timeout=10)
        data: dict[str, Any] = response.json()
        return data

    def recorder(self) -> Any:
        return self.app.state.site.recorder


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, videos: Path) -> Iterator[RunningServer]:
    from khfsm.registry import installed_exercises

    if "pushup" not in installed_exercises():
        unavailable("the pushup exercise (exercises/pushup.py) is not installed")
    with running_server(tmp_path_factory.mktemp("khfsm-server"), videos) as running:
        yield running


@contextmanager
def running_server(root: Path, videos: Path, **overrides: Any) -> Iterator[RunningServer]:
    """A server on a free port under `root`, serving the tasks installed when it starts;
    `overrides` are `Settings` fields (limits, token, ...). It is the uvicorn server
    `khfsm serve` runs (`khfsm.server.app.uvicorn_server`)."""
    from khfsm.server.app import create_app, uvicorn_server

    media = root / "media"
    media.mkdir()
    shutil.copyfile(videos / CLIP, media / "clip.mp4")
    fields: dict[str, Any] = {
        "data_dir": root,
        "media_root": media,
        "camera_grace_s": CAMERA_GRACE_S,
        "host": "127.0.0.1",
        "port": free_port(),
        "max_wait_ms": 5.0,
    }
    settings = Settings(**{**fields, **overrides})
    app = create_app(settings)
    uv = uvicorn_server(app, settings, lifespan="on")
    thread = threading.Thread(target=uv.run, name="khfsm-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start within 60 s")
        time.sleep(0.05)
    try:
        yield RunningServer(settings.port, media, settings.resolved_database_url, app)
    finally:
        uv.should_exit = True
        thread.join(timeout=30)


@dataclass
class Message:
    raw: str
    code: int | None
    body: dict[str, Any]
    at: float

    @property
    def is_ack(self) -> bool:
        return "op" in self.body and "result" in self.body

    @property
    def terminal(self) -> bool:
        status = self.body.get("status")
        return not self.is_ack and isinstance(status, list) and any(c < 0 for c in status)


def parse(raw: str) -> Message:
    match = _CODED.match(raw)
    if match:
        return Message(raw, int(match.group(1)), json.loads(match.group(3)), time.monotonic())
    return Message(raw, None, json.loads(raw), time.monotonic())


class Tablet:
    """A WebSocket client speaking the tablet protocol."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, body: dict[str, Any] | str, code: int | None = None) -> float:
        text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
        if code is not None:
            text = f"{code} {text}"
        await self.ws.send(text)
        return time.monotonic()

    async def recv(self, within: float = 10.0) -> Message:
        with anyio.fail_after(within):
            return parse(str(await self.ws.recv()))

    async def ack(self, within: float = 15.0) -> Message:
        message = await self.recv(within)
        assert message.is_ack, f"expected an ack, got {message.raw}"
        return message

    async def request(
        self, body: dict[str, Any] | str, code: int | None = None, within: float = 15.0
    ) -> Message:
        await self.send(body, code)
        return await self.ack(within)

    async def until_terminal(self, within: float = 30.0) -> tuple[list[Message], Message]:
        """Pushes up to and including the terminal one."""
        seen: list[Message] = []
        with anyio.fail_after(within):
            while True:
                message = await self.recv(within)
                if message.terminal:
                    return seen, message
                seen.append(message)

    async def silent(self, seconds: float) -> None:
        """Nothing arrives for `seconds`."""
        with anyio.move_on_after(seconds):
            raw = await self.ws.recv()
            pytest.fail(f"unexpected message: {raw}")

    async def close(self) -> None:
        await self.ws.close()


class connect:  # lower case: used like websockets.connect
    def __init__(self, server: RunningServer, path: str = "/") -> None:
        self.url = server.ws_url + path

    async def __aenter__(self) -> Tablet:
        self._cm = websockets.connect(self.url, max_size=None)
        return Tablet(await self._cm.__aenter__())

    async def __aexit__(self, *exc: Any) -> None:
        await self._cm.__aexit__(*exc)


_counter = iter(range(1, 1_000_000))


def video_name(tag: str) -> str:
    """A fresh ModelPath (relative to the media root) for one test's session."""
    return f"video/{tag}_{next(_counter)}_{time.monotonic_ns()}.mp4"


def prepare_body(
    capture_id: int, video: str, duration: Any, fps: Any = 10, **over: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Task": "pushup",
        "Op": "prepare",
        "CaptureID": capture_id,
        "CapturePath": "clip.mp4",
        "ModelPath": video,
        "Duration": duration,
        "Fps": fps,
        "Level": 5,
    }
    body.update(over)
    return body


def op(op_name: str, capture_id: int, task: str = "pushup") -> dict[str, Any]:
    return {"Task": task, "Op": op_name, "CaptureID": capture_id}


def decode_video(path: Path) -> list[float]:
    """Presentation times (s) of every frame that decodes, in order; a file cut mid-write
    decodes up to its last complete fragment. A packet that does not decode is skipped, as a
    player skips it: a remuxed recording keeps the camera's own packets, broken ones included
    (a live camera under load drops RTP packets, and the frame they carried arrives broken),
    and the frames after it decode as they did for the assessment."""
    import av

    times: list[float] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except (StopIteration, av.error.InvalidDataError):
                break  # the end, or a fragment cut mid-write
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue
            for frame in frames:
                assert frame.pts is not None and frame.time_base is not None
                times.append(float(frame.pts * frame.time_base))
    return times


def assert_recording(
    path: Path, frames: int, fps: float, observed: list[Any] | None = None, live: bool = False
) -> list[float]:
    """The evidence video holds the camera's frames without a gap (one frame interval from
    each to the next; not checked for a live camera, whose own frames may come unevenly) up
    to at least assessed frame `frames` - 1, and every assessed frame (`FrameObserved.pts`,
    when the events are given) is one of them."""
    times = decode_video(path)
    assert times, f"no frame of {path} decodes"
    assert times == sorted(times)
    assert times[0] <= 0.1
    if not live:
        steps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
        gaps = [(i, step) for i, step in enumerate(steps) if step != min(steps)]
        assert not gaps, f"frames missing from the {len(times)} recorded: {gaps[:5]}"
    if observed is None:  # a file at its own rate: the assessed span in camera time
        assert times[-1] >= (frames - 1) / fps - 0.05
    else:
        assert len(observed) == frames
        decoded = {round(t, 4) for t in times}
        missing = [(e.frame, e.pts) for e in observed if round(e.pts, 4) not in decoded]
        assert not missing, (
            f"assessed frames not in the {len(times)} recorded (last at {times[-1]:.4f} s): "
            f"{missing[:5]}"
        )
    return times
