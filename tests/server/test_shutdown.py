"""SIGTERM: running lanes end with −6 and their tablets hear it before the socket closes.

A real `khfsm serve` process, a real WebSocket tablet with one running and one prepared
lane: after SIGTERM the tablet receives both terminal pushes (status −6, "server shutting
down") and only then the close frame; the store holds both sessions ended with −6, and the
result webhook (a real local receiver) got both results before the process ended.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
import websockets

from khfsm.domain.events import SessionEnded
from tests.review.receiver import Receiver
from tests.server.conftest import CLIP, Message, free_port, op, parse, prepare_body

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    port: int
    process: subprocess.Popen[bytes]
    data: Path
    receiver: Receiver

    @property
    def log(self) -> str:
        return (self.data / "serve.log").read_text()


@pytest.fixture
def served(tmp_path: Path, videos: Path) -> Iterator[Served]:
    """`khfsm serve` in its own process, on SQLite under `tmp_path`, once /healthz answers."""
    media = tmp_path / "media"
    media.mkdir()
    shutil.copyfile(videos / CLIP, media / "clip.mp4")
    port = free_port()
    receiver = Receiver().start()
    receiver.delay_s = 1.0  # a slow records system: the results are still in flight at SIGTERM
    env = {**os.environ, "KHFSM_DATA_DIR": str(tmp_path), "KHFSM_CAMERA_GRACE_S": "1",
           "KHFSM_WEBHOOK_URL": receiver.url}  # fmt: skip
    khfsm = Path(sys.executable).with_name("khfsm")
    command = [str(khfsm), "serve", "--host", "127.0.0.1", "--port", str(port),
               "--media-root", str(media)]  # fmt: skip
    with (tmp_path / "serve.log").open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    served = Served(port, process, tmp_path, receiver)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, served.log
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "khfsm serve did not start within 90 s"
            time.sleep(0.2)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        receiver.stop()


@pytest.mark.anyio
async def test_sigterm_delivers_every_terminal_push_before_closing(served: Served) -> None:
    port, process = served.port, served.process
    received: list[Message] = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:

        async def request(body: dict[str, object]) -> Message:
            await ws.send(f"2001 {json.dumps(body)}")
            while True:
                message = parse(str(await ws.recv()))
                if message.is_ack:
                    return message
                received.append(message)

        running = await request(prepare_body(1, "video/running.mp4", 60, 10))
        assert running.body["result"] == "ok", running.body
        assert (await request(op("start", 1))).body["result"] == "ok"
        prepared = await request(prepare_body(2, "video/prepared.mp4", 60, 10))
        assert prepared.body["result"] == "ok", prepared.body
        await anyio.sleep(1.5)  # the running lane assesses some frames
        process.send_signal(signal.SIGTERM)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            with anyio.fail_after(60):
                while True:
                    received.append(parse(str(await ws.recv())))
    terminals = {m.body["CaptureID"]: m for m in received if m.terminal}
    assert set(terminals) == {1, 2}, [m.raw for m in received]
    for terminal in terminals.values():
        assert terminal.body["status"] == [-6]
        assert terminal.body["msg"] == "server shutting down"
        assert terminal.code == 2222  # the task's push code, as the tablet expects
    assert closed.value.rcvd is not None  # a close frame, not a dropped connection
    # uvicorn re-raises the SIGTERM it caught once it has shut down: the process ends as
    # a SIGTERM'd one (which supervisors such as systemd count as a clean stop).
    returncode = await anyio.to_thread.run_sync(lambda: process.wait(timeout=60))
    assert returncode in (0, -signal.SIGTERM)
    # The results queued by the -6 endings were posted before the process ended.
    posted = {body["session_id"]: body for body in served.receiver.bodies}
    assert set(posted) == {terminal.body["session"] for terminal in terminals.values()}

    from khfsm.store.sql import open_recorder

    recorder = open_recorder(f"sqlite:///{served.data / 'khfsm.sqlite'}")
    try:
        for terminal in terminals.values():
            events = recorder.events(terminal.body["session"])
            ended = events[-1]
            assert isinstance(ended, SessionEnded) and ended.status == -6, ended
    finally:
        recorder.close()
    for terminal in terminals.values():  # the -6 ending replays like any other
        verify = await anyio.run_process(
            [str(Path(sys.executable).with_name("khfsm")), "verify", terminal.body["session"],
             "--database-url", f"sqlite:///{served.data / 'khfsm.sqlite'}"],
            check=False,
        )  # fmt: skip
        assert verify.returncode == 0, (verify.stdout + verify.stderr).decode()
    assert "Traceback" not in served.log
