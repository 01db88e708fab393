"""Review page benchmark (a script, not a test): from a click in the session list to a review
page that plays, for a 2-minute session, in Debian's headless Chromium.

    KHFSM_KEYPOINT_CACHE=/work/kpcache .venv/bin/python benchmarks/bench_review_page.py [-n 5]

The session is built as benchmarks/bench_bundle.py builds it: the real keypoints of a
push-up clip looped to Duration 122 at 20 fps (2,440 assessed frames) and judged by the
installed push-up rules; its video written by the live recorder from the clip's frames at 20
fps. `khfsm serve`'s app serves it under uvicorn; Selenium drives Chromium through Debian's
chromedriver at 1280x800. Each round: open the list, click the session's row, then

- ready: the page's own clock from the navigation to "the video can play and the skeleton of
  its first frame is drawn" (summary, keypoints and the video's first bytes loaded);
- playing: from the click to the video's `playing` event after pressing Play at ready (the
  wall clock of this script, including the round trips of the driver).

Prints each round and the medians.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench_api import serving as serve_app
from bench_bundle import record_video

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO.parent / "shared" / "data" / "videos" / "pushup_06_tayyab_pushup.mp4"
FPS, FRAMES = 20.0, 2440  # Duration 122 s at 20 fps
PASSWORD = "bench-password"


def store_session(root: Path) -> tuple[str, str]:
    """A 2-minute push-up session in a fresh SQLite store; (database URL, session id)."""
    from khfsm.api.accounts import Accounts, Role
    from khfsm.domain.events import SessionEnded, SessionPrepared, SessionStarted
    from khfsm.domain.run import judge_poses
    from khfsm.offline.cache import cached_keypoints
    from khfsm.registry import get_exercise
    from khfsm.store.sql import open_recorder

    cache = os.environ.get("KHFSM_KEYPOINT_CACHE") or tempfile.mkdtemp(prefix="khfsm-kp-")
    poses = cached_keypoints(CLIP, FPS, cache).poses()
    looped = [poses[k % len(poses)] for k in range(FRAMES)]
    video = root / "media" / "video" / "session.mp4"
    sha256, size, width, height = record_video(CLIP, video)
    exercise = get_exercise("pushup")
    prepared = SessionPrepared(
        task="pushup",
        capture_id=1,
        level=5,
        fps=FPS,
        frames=FRAMES,
        source="rtsp://camera/lane1",
        video_path=str(video),
        engine_version="bench",
        rules_version=exercise.rules_version,
        frame_width=width,
        frame_height=height,
    )
    events = judge_poses(exercise, prepared, looped, started=SessionStarted())
    end = events[-1]
    assert isinstance(end, SessionEnded)
    events[-1] = end.sealed(sha256, size)
    url = f"sqlite:///{root / 'khfsm.sqlite'}"
    recorder = open_recorder(url, upgrade=True)
    try:
        recorder.append("bench2min", 0, events)
        Accounts(recorder.engine).add("bench", Role.REVIEWER, PASSWORD)
    finally:
        recorder.close()
    print(
        f"session: {FRAMES} frames, {len(events)} events, {end.count}/{end.total} reps, "
        f"video {width}x{height} {size / 1e6:.1f} MB"
    )
    return url, "bench2min"


@contextmanager
def serving(root: Path, url: str) -> Iterator[str]:
    """The app over `url`'s store, as bench_api.py serves it; yields the root URL."""
    from khfsm.settings import Settings

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    settings = Settings(
        data_dir=root, media_root=root / "media", database_url=url, port=port, host="127.0.0.1"
    )
    with serve_app(settings) as base:
        yield base


def chromium() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False},
    )
    return driver


def until(driver: Any, script: str, within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    while not (value := driver.execute_script(f"return {script};")):
        if time.monotonic() > deadline:
            raise SystemExit(f"never true within {within} s: {script}")
        time.sleep(0.01)
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--rounds", type=int, default=5)
    parser.add_argument(
        "--root",
        type=Path,
        help="keep the built session (store and video) in this folder and reuse it next time",
    )
    parser.add_argument("--screenshot", type=Path, help="save the last review page here (PNG)")
    args = parser.parse_args()
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory(prefix="khfsm-bench-page-") as tmp:
        root = args.root or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        if (root / "khfsm.sqlite").is_file():
            url, session_id = f"sqlite:///{root / 'khfsm.sqlite'}", "bench2min"
        else:
            url, session_id = store_session(root)
        with serving(root, url) as base:
            driver = chromium()
            try:
                driver.get(f"{base}/ui/login")
                driver.find_element(By.ID, "username").send_keys("bench")
                driver.find_element(By.ID, "password").send_keys(PASSWORD)
                driver.find_element(By.ID, "login-submit").click()
                until(driver, "document.querySelector('#sessions')")
                ready, playing = [], []
                for round_ in range(args.rounds):
                    driver.get(f"{base}/ui/")
                    row = f"tr[data-session='{session_id}'] td:nth-child(2)"
                    until(driver, f'document.querySelector("{row}")')
                    cell = driver.find_element(By.CSS_SELECTOR, row)
                    clicked = time.perf_counter()
                    cell.click()
                    until(driver, "window.khfsmReview && window.khfsmReview.ready")
                    driver.execute_script(
                        "const v = document.getElementById('video');"
                        "window.benchPlaying = false;"
                        "v.addEventListener('playing', () => (window.benchPlaying = true));"
                        "document.getElementById('play').click();"
                    )
                    until(driver, "window.benchPlaying")
                    played = time.perf_counter() - clicked
                    marks = driver.execute_script("return window.khfsmReview")
                    ready.append(marks["readyMs"])
                    playing.append(played * 1000)
                    print(
                        f"round {round_ + 1}: summary {marks['summaryMs']:.0f} ms, keypoints "
                        f"{marks['keypointsMs']:.0f} ms, video playable {marks['canplayMs']:.0f}"
                        f" ms, ready {marks['readyMs']:.0f} ms after navigation; playing "
                        f"{played * 1000:.0f} ms after the click"
                    )
                if args.screenshot:
                    time.sleep(1.0)
                    driver.execute_script("document.querySelector('#timeline .rep.fault')?.click()")
                    time.sleep(1.0)
                    driver.save_screenshot(str(args.screenshot))
            finally:
                driver.quit()
    print(
        f"2-minute session, median of {args.rounds}: ready {statistics.median(ready):.0f} ms, "
        f"playing {statistics.median(playing):.0f} ms after the click"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
