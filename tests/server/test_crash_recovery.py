"""SIGKILL of a real `khfsm serve` with three running lanes, then a restart.

Nothing acknowledged is lost: every frame assessed and every repetition pushed before the
kill is stored; the restarted server ends the three sessions with -7 "server stopped
unexpectedly", their partial recordings (which decode) hashed into the end, and
`khfsm verify` passes for each.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

import anyio
import pytest

from khfsm.domain.codes import EndStatus
from khfsm.domain.events import FrameObserved, RepCounted, SessionEnded, SourceFailed
from khfsm.store import open_recorder
from tests.server.conftest import Message, Tablet, connect, decode_video, op, prepare_body
from tests.server.served import ServedProcess, khfsm_cli

pytestmark = pytest.mark.anyio

CAPTURES = (1, 2, 3)
MIN_FRAMES = 20  # each lane has assessed this many frames (4 s at 5 fps) before the kill


async def run_lanes_then_kill(served: ServedProcess, min_frames: int) -> dict[str, Any]:
    """Three lanes started over one tablet connection; SIGKILL once each has assessed
    `min_frames` frames and a repetition was pushed. What the tablet and /healthz saw."""
    videos = {capture: f"video/crash_{capture}.mp4" for capture in CAPTURES}
    pushes: list[Message] = []
    async with contextlib.AsyncExitStack() as stack:
        tablet: Tablet = await stack.enter_async_context(connect(served))  # type: ignore[arg-type]
        for capture, video in videos.items():
            ack = await tablet.request(prepare_body(capture, video, duration=60, fps=5))
            assert ack.body["result"] == "ok", ack.raw
        for capture in CAPTURES:
            assert (await tablet.request(op("start", capture))).body["result"] == "ok"
        with anyio.fail_after(60):  # a busy machine runs the pose model slowly
            while True:
                with anyio.move_on_after(0.3):
                    pushes.append(await tablet.recv())
                _, health = await anyio.to_thread.run_sync(served.health)
                lanes = {lane["capture_id"]: lane for lane in health["lane_list"]}
                # Some repetition pushed too: its push must survive the kill as well.
                if all(lanes[c]["frames"] >= min_frames for c in CAPTURES) and any(
                    lanes[c]["total"] for c in CAPTURES
                ):
                    break
        # What the tablet has been told until the kill must survive it: a rep is pushed
        # only once its events are fsync'd in the spool.
        with anyio.move_on_after(0.5):
            while True:
                pushes.append(await tablet.recv())
        await anyio.to_thread.run_sync(served.kill)
        stack.push_async_exit(_ignore_errors)
    assert not [push for push in pushes if push.terminal], "a lane ended before the kill"
    assert [push for push in pushes if not push.is_ack], "no repetition was pushed"
    return {"videos": videos, "lanes": lanes, "pushes": pushes}


async def _ignore_errors(*_: object) -> bool:
    return True  # the connection died with the server


async def test_sigkill_with_three_running_lanes_then_restart_ends_them_with_minus_7(
    tmp_path: Path, videos: Path
) -> None:
    served = ServedProcess(tmp_path, videos)
    served.start()
    try:
        seen = await run_lanes_then_kill(served, MIN_FRAMES)
        restarted_in = served.start()
        status, health = served.health()
        assert status == 200 and health["status"] == "ok"
    finally:
        served.stop()
    reps = sum(1 for push in seen["pushes"] if not push.is_ack)
    print(f"{reps} pushes before the kill; restart until /healthz answered: {restarted_in:.1f} s")

    recorder = open_recorder(served.url)
    try:
        for capture, lane in seen["lanes"].items():
            session_id = lane["session"]
            events = recorder.events(session_id)
            row = recorder.session(session_id)
            assert row is not None and row.end_status == EndStatus.SERVER_CRASHED
            assert row.frames >= lane["frames"]  # every frame assessed before the kill
            # The crash input, then what it derives (a rep in progress judged, the end).
            assert [e.status for e in events if isinstance(e, SourceFailed)] == [-7]
            end = events[-1]
            assert isinstance(end, SessionEnded)
            assert (end.status, end.message) == (-7, "server stopped unexpectedly")
            video = served.media / seen["videos"][capture]
            content = video.read_bytes()
            assert end.video_sha256 == hashlib.sha256(content).hexdigest()
            assert end.video_bytes == len(content)
            # The partial recording decodes, its frames in order, and holds the frames the
            # lane assessed up to its last complete fragment.
            times = decode_video(video)
            assert times and times == sorted(set(times))
            observed = [e.pts for e in events if isinstance(e, FrameObserved) and e.pts is not None]
            recorded = {round(t, 4) for t in times}
            assert all(round(pts, 4) in recorded for pts in observed if pts <= times[-1])
            reps = {e.rep: e for e in events if isinstance(e, RepCounted)}
            for push in seen["pushes"]:
                if push.body.get("CaptureID") == capture:
                    rep = reps[push.body["total"]]  # every pushed repetition is stored
                    assert (list(rep.status), rep.count) == (
                        push.body["status"],
                        push.body["count"],
                    )
            verified = khfsm_cli("verify", session_id, "--database-url", served.url)
            assert verified.returncode == 0, verified.stdout + verified.stderr
            assert recorder.verify_chain(session_id).ok
    finally:
        recorder.close()
    log = served.log()
    print(*(line for line in served.log().splitlines() if "crash recovery:" in line), sep="\n")
    assert log.count("ended at start-up with status -7 (server stopped unexpectedly)") == 3
    assert not list(served.spool.glob("*.jsonl"))
