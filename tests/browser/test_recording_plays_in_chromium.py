"""The evidence video plays and seeks in Chromium when served with HTTP Range support.

Real recordings (`VideoRecorder`'s encoded one, and a camera's packets remuxed by
`PacketRecorder`), a real HTTP server (uvicorn + Starlette's StaticFiles, which answers Range
requests), and Debian's headless Chromium, driven by Selenium (tests/browser/conftest.py),
running a page that plays the video, seeks to 2 s and reports what the <video> element saw.
The report is waited for in real time: Chromium's `--virtual-time-budget` once ran out before
the video had loaded on a busy machine, and the page still said "pending".
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from khfsm.server.recording import VideoRecorder
from tests.browser.conftest import wait_for
from tests.server.test_recording import encode_clip, record_directly

PAGE = """<!doctype html><html><head><link rel="icon" href="data:,"></head><body>
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


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """`folder`, with PAGE as its index.html, served over HTTP (Range requests answered)."""
    (folder / "index.html").write_text(PAGE)
    app = Starlette(routes=[Mount("/", StaticFiles(directory=folder, html=True))])
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


def video_report(browser: Any, url: str) -> dict[str, Any]:
    """What PAGE at `url` reports once its video has played and sought to 2 s (or failed)."""
    browser.get(f"{url}/index.html")
    text = wait_for(
        browser,
        "(t => t !== 'pending' && t)(document.getElementById('result').textContent)",
        within=60,
    )
    report: dict[str, Any] = json.loads(text)
    return report


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    recorder = VideoRecorder(tmp_path / "evidence.mp4", fps=20, width=320, height=240)
    recorder.open()
    for index in range(60):  # 3 s: a box moving across the frame
        image = np.full((240, 320, 3), 40, dtype=np.uint8)
        cv2.rectangle(image, (index * 4, 80), (index * 4 + 40, 160), (0, 200, 255), -1)
        recorder.write(index, image)
    recorder.close()
    with serve_folder(tmp_path) as url:
        yield url


@pytest.fixture
def served_remux(tmp_path: Path) -> Iterator[str]:
    # An IP camera's stream: H.264 without B-frames. (This headless Chromium does not play
    # the shared clips that have B-frames even as they are, so they cannot show anything.)
    camera = tmp_path / "camera.mp4"
    encode_clip(camera, [(320, 240)], 5.0)
    record_directly(camera, tmp_path / "evidence.mp4", 100)  # 4 s, and the tail
    with serve_folder(tmp_path) as url:
        yield url


def test_server_answers_range_requests(served: str) -> None:
    response = httpx.get(f"{served}/evidence.mp4", headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    assert len(response.content) == 100


def test_recording_plays_and_seeks_in_chromium(served: str, browser: Any) -> None:
    result = video_report(browser, served)
    assert "error" not in result, f"Chromium could not play the video: {result}"
    assert result["width"] == 320 and result["height"] == 240
    assert result["duration"] == pytest.approx(3.0, abs=0.06)
    assert result["seekedTo"] == pytest.approx(2.0, abs=0.06)
    assert result["readyState"] >= 2  # HAVE_CURRENT_DATA: the frame at 2 s is decoded


def test_remuxed_recording_plays_and_seeks_in_chromium(served_remux: str, browser: Any) -> None:
    result = video_report(browser, served_remux)
    assert "error" not in result, f"Chromium could not play the video: {result}"
    assert result["width"] == 320 and result["height"] == 240
    assert result["duration"] >= 3.9
    assert result["seekedTo"] == pytest.approx(2.0, abs=0.06)
    assert result["readyState"] >= 2  # HAVE_CURRENT_DATA: the frame at 2 s is decoded
