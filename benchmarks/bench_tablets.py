"""Many tablets and one that never reads: is the server's memory bounded, are pings answered?

    .venv/bin/python benchmarks/bench_tablets.py [--minutes 10] [--tablets 50] [--lanes 2]

Starts `khfsm serve` in its own process (SQLite and media root in a temporary directory, a
shared clip as the lanes' camera), then for --minutes runs:

* --tablets tablets that each ask for their lane's status every second and ping the server
  every 2 s (the round trip of each ping is recorded);
* --lanes of them also run tests on the clip, one after another, so pushes flow;
* one client that never reads: a raw socket that sends requests (each answered by an error
  ack) as fast as the server takes them and never reads a byte.

Prints the server's peak and final RSS, the RSS after warm-up, ping round-trip percentiles,
pings unanswered, and what became of the client that never reads (the server stops reading
from it once its replies queue up, and disconnects it after send_timeout_s).
The test `tests/server/test_tablet_load.py` runs the same for half a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websockets

REPO = Path(__file__).resolve().parents[1]
CLIP = "pushup_01_div_perfect_pushup_2.mp4"


@dataclass
class Figures:
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MB)
    ping_ms: list[float] = field(default_factory=list)
    pings_unanswered: int = 0
    acks: int = 0
    lanes_ended: int = 0
    silent_sent_bytes: int = 0
    silent_closed_after_s: float | None = None  # the server closed the non-reader
    errors: list[str] = field(default_factory=list)

    @property
    def peak_rss_mb(self) -> float:
        return max((mb for _, mb in self.rss_mb), default=0.0)

    def rss_after(self, seconds: float) -> float:
        return next((mb for at, mb in self.rss_mb if at >= seconds), self.peak_rss_mb)

    def ping_percentile(self, q: float) -> float:
        if not self.ping_ms:
            return float("nan")
        ordered = sorted(self.ping_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(
    data: Path, videos: Path, **settings: str
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`khfsm serve` on a free port with KHFSM_* `settings`, once /healthz answers."""
    media = data / "media"
    media.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(videos / CLIP, media / "clip.mp4")
    port = free_port()
    env = {**os.environ, "KHFSM_DATA_DIR": str(data), "KHFSM_CAMERA_GRACE_S": "2"}
    env.update({f"KHFSM_{key.upper()}": value for key, value in settings.items()})
    khfsm = Path(sys.executable).with_name("khfsm")
    command = [str(khfsm), "serve", "--host", "127.0.0.1", "--port", str(port),
               "--media-root", str(media), "--log-level", "WARNING"]  # fmt: skip
    with (data / "serve.log").open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError((data / "serve.log").read_text())
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("khfsm serve did not start within 120 s")
            time.sleep(0.2)
        yield process, port
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- the client that never reads ---------------------------------------------------------------


def _frame(text: str) -> bytes:
    """A masked client text frame (RFC 6455 §5.2)."""
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    size = len(payload)
    header = (
        struct.pack("!BB", 0x81, 0x80 | size)
        if size < 126
        else struct.pack("!BBH", 0x81, 0x80 | 126, size)
    )
    return header + mask + masked


def never_reads(port: int, seconds: float, figures: Figures, stop: threading.Event) -> None:
    """Sends requests whose error acks echo ~200 characters, and never reads a byte."""
    sock = socket.socket()
    # A small receive window (no autotuning): the server's replies back up sooner.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(handshake.encode())
    head = b""
    while b"\r\n\r\n" not in head:  # the handshake's answer is the only thing ever read
        head += sock.recv(1)
    frame = _frame(json.dumps({"Task": "pushup", "Op": "status", "CaptureID": "x" * 2000}))
    sock.setblocking(False)
    started = time.monotonic()
    pending = b""
    try:
        while not stop.is_set() and time.monotonic() - started < seconds:
            try:
                pending = pending or frame * 16
                sent = sock.send(pending)
                figures.silent_sent_bytes += sent
                pending = pending[sent:]
            except BlockingIOError:
                time.sleep(0.05)
            except OSError:
                figures.silent_closed_after_s = time.monotonic() - started
                return
            # The server closing its side shows as an RST/EOF on our next send; probe it too.
            try:
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    figures.silent_closed_after_s = time.monotonic() - started
                    return
            except BlockingIOError:
                pass
            except OSError:
                figures.silent_closed_after_s = time.monotonic() - started
                return
    finally:
        sock.close()


# -- the reading tablets -------------------------------------------------------------------------


async def tablet(port: int, index: int, seconds: float, runs_lanes: bool, figures: Figures) -> None:
    capture_id = 1000 + index
    deadline = time.monotonic() + seconds
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/", max_size=None) as ws:
            reader_done = asyncio.Event()

            async def read() -> None:
                try:
                    async for raw in ws:
                        body = json.loads(str(raw))
                        if "op" in body:
                            figures.acks += 1
                            if body["op"] in ("prepare", "start") and body["error"]:
                                figures.errors.append(f"tablet {index}: {body['error']}")
                        elif any(code < 0 for code in body.get("status", [])):
                            figures.lanes_ended += 1
                            if runs_lanes:
                                await start_lane()
                except websockets.ConnectionClosed:
                    pass
                finally:
                    reader_done.set()

            async def start_lane() -> None:
                if time.monotonic() + 5 > deadline:
                    return
                video = f"video/load_{index}_{time.time_ns()}.mp4"
                duration = min(20.0, max(3.0, deadline - time.monotonic() - 8))
                prepare = {"Task": "pushup", "Op": "prepare", "CaptureID": capture_id,
                           "CapturePath": "clip.mp4", "ModelPath": video,
                           "Duration": duration, "Fps": 10, "Level": 5}  # fmt: skip
                await ws.send(json.dumps(prepare))
                await ws.send(
                    json.dumps({"Task": "pushup", "Op": "start", "CaptureID": capture_id})
                )

            reading = asyncio.create_task(read())
            if runs_lanes:
                await start_lane()
            tick = 0
            while time.monotonic() < deadline and not reader_done.is_set():
                await ws.send(
                    json.dumps({"Task": "pushup", "Op": "status", "CaptureID": capture_id})
                )
                if tick % 2 == 0:
                    sent = time.monotonic()
                    try:
                        pong = await ws.ping()
                        await asyncio.wait_for(pong, timeout=10)
                        figures.ping_ms.append(1000 * (time.monotonic() - sent))
                    except (TimeoutError, websockets.ConnectionClosed):
                        figures.pings_unanswered += 1
                tick += 1
                await asyncio.sleep(1.0)
            reading.cancel()
    except Exception as error:  # reported, never hidden
        figures.errors.append(f"tablet {index}: {type(error).__name__}: {error}")


async def run_load(port: int, pid: int, seconds: float, tablets: int, lanes: int) -> Figures:
    figures = Figures()
    stop = threading.Event()
    silent = threading.Thread(target=never_reads, args=(port, seconds, figures, stop), daemon=True)
    started = time.monotonic()

    async def sample() -> None:
        while True:
            figures.rss_mb.append((time.monotonic() - started, rss_mb(pid)))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    silent.start()
    try:
        await asyncio.gather(
            *(tablet(port, i, seconds, i < lanes, figures) for i in range(tablets))
        )
    finally:
        stop.set()
        sampler.cancel()
        await asyncio.to_thread(silent.join, 30)
    figures.rss_mb.append((time.monotonic() - started, rss_mb(pid)))
    return figures


def report(figures: Figures, seconds: float) -> str:
    warm = figures.rss_after(min(10.0, seconds / 3))
    pings = figures.ping_ms
    closed = (
        f"disconnected by the server after {figures.silent_closed_after_s:.1f} s"
        if figures.silent_closed_after_s is not None
        else "still connected (the server stopped reading it)"
    )
    return "\n".join([
        f"  server RSS: after warm-up {warm:.0f} MB, peak {figures.peak_rss_mb:.0f} MB, "
        f"final {figures.rss_mb[-1][1]:.0f} MB",
        f"  pings: {len(pings)} answered, {figures.pings_unanswered} unanswered; round trip "
        f"p50 {statistics.median(pings) if pings else float('nan'):.1f} ms, "
        f"p95 {figures.ping_percentile(0.95):.1f} ms, p99 {figures.ping_percentile(0.99):.1f} ms, "
        f"max {max(pings, default=float('nan')):.1f} ms",
        f"  acks received {figures.acks}, lanes ended {figures.lanes_ended}",
        f"  the client that never reads: sent {figures.silent_sent_bytes / 1e6:.1f} MB, {closed}",
        *(f"  error: {error}" for error in figures.errors[:10]),
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--tablets", type=int, default=50)
    parser.add_argument("--lanes", type=int, default=2, help="tablets that also run tests")
    parser.add_argument("--send-timeout-s", default="30", help="the server's send_timeout_s")
    args = parser.parse_args()
    videos = Path(os.environ.get("KHFSM_TEST_VIDEOS", REPO.parent / "shared" / "data" / "videos"))
    seconds = args.minutes * 60
    with (
        tempfile.TemporaryDirectory() as tmp,
        served(Path(tmp), videos, send_timeout_s=args.send_timeout_s) as (process, port),
    ):
        print(f"{args.tablets} tablets ({args.lanes} running tests) and one that never reads, "
              f"{args.minutes:g} min against khfsm serve (pid {process.pid})")  # fmt: skip
        figures = asyncio.run(run_load(port, process.pid, seconds, args.tablets, args.lanes))
        print(report(figures, seconds))


if __name__ == "__main__":
    main()
