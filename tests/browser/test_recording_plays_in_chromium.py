"""The evidence video plays and seeks in Chromium when served with HTTP Range support.

A real recording from `VideoRecorder`, a real HTTP server (uvicorn + Starlette's StaticFiles,
which answers Range requests), and Debian's headless Chromium running a page that plays the
video, seeks to 2 s and reports what the <video> element saw.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from khfsm.server.recording import VideoRecorder
from tests.conftest import unavailable

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PAGE = """<!doctype html><html><body>
<video id="v" src="/evidence.mp4" muted playsinline preload="auto"></video>
<pre id="result">pending</pre>
<script>
const v = document.getElementById("v"), out = document.getElementById("result");
const seen = {};
v.addEventListener("error", () => {
  out.textContent = JSON.stringify({error: v.error && v.error.code});
});
v.addEventListener("loadedmetadata", () => {
  seen.duration = v.duration; seen.width = v.videoWidth; seen.height = v.videoHeight;
  v.play().then(() => { seen.played = true; v.pause(); v.currentTime = 2.0; })
          .catch(e => { seen.playError = String(e); v.currentTime = 2.0; });
});
v.addEventListener("seeked", () => {
  seen.seekedTo = v.currentTime; seen.readyState = v.readyState;
  out.textContent = JSON.stringify(seen);
});
</script></body></html>"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    recorder = VideoRecorder(tmp_path / "evidence.mp4", fps=20, width=320, height=240)
    recorder.open()
    for index in range(60):  # 3 s: a box moving across the frame
        image = np.full((240, 320, 3), 40, dtype=np.uint8)
        cv2.rectangle(image, (index * 4, 80), (index * 4 + 40, 160), (0, 200, 255), -1)
        recorder.write(index, image)
    recorder.close()
    (tmp_path / "index.html").write_text(PAGE)
    app = Starlette(routes=[Mount("/", StaticFiles(directory=tmp_path, html=True))])
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_server_answers_range_requests(served: str) -> None:
    response = httpx.get(f"{served}/evidence.mp4", headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    assert len(response.content) == 100


def test_recording_plays_and_seeks_in_chromium(served: str, tmp_path: Path) -> None:
    if CHROMIUM is None:
        unavailable("Debian's chromium is not installed (scripts/setup.sh --test installs it)")
    assert CHROMIUM is not None
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000",
        "--dump-dom", f"{served}/index.html",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="result">(.*?)</pre>', done.stdout, re.S)
    assert match, f"no result in Chromium's DOM; stderr:\n{done.stderr[-2000:]}"
    result = json.loads(match.group(1).replace("&quot;", '"'))
    assert "error" not in result, f"Chromium could not play the video: {result}"
    assert result["width"] == 320 and result["height"] == 240
    assert result["duration"] == pytest.approx(3.0, abs=0.06)
    assert result["seekedTo"] == pytest.approx(2.0, abs=0.06)
    assert result["readyState"] >= 2  # HAVE_CURRENT_DATA: the frame at 2 s is decoded
