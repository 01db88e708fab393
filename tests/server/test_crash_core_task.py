"""A core task of the site dies: /healthz says so (503, the reason) and `khfsm serve` exits
non-zero, so that a supervisor restarts it, after ending its lanes in order.

The fault is real: the spool directory is replaced by a file while the server runs (a
failed or remounted disk), so the event spool cannot write the next session's file.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import anyio
import pytest

from khfsm.store import open_recorder
from tests.server.conftest import connect, prepare_body, running_server
from tests.server.served import ServedProcess

pytestmark = pytest.mark.anyio


def break_spool(directory: Path) -> None:
    shutil.rmtree(directory)
    directory.write_text("not a directory any more\n")


async def test_a_dead_core_task_makes_healthz_fail_with_the_reason(
    tmp_path: Path, videos: Path
) -> None:
    with running_server(tmp_path, videos) as server:
        assert server.health()["status"] == "ok"
        break_spool(tmp_path / "spool")
        async with connect(server) as tablet:
            ack = await tablet.request(prepare_body(9, "video/core.mp4", duration=3, fps=10))
            assert ack.body["result"] == "ok", ack.raw
            for _ in range(100):  # the spool tries to write within 0.1 s
                health = server.health()
                if health["status"] != "ok":
                    break
                await anyio.sleep(0.1)
        response_status = await anyio.to_thread.run_sync(_status, server.http_url)
    assert response_status == 503
    assert health["status"] == "failed"
    assert "event spool died" in health["failure"]
    assert "NotADirectoryError" in health["failure"]


def _status(url: str) -> int:
    import httpx

    return httpx.get(f"{url}/healthz", timeout=10).status_code


async def test_khfsm_serve_exits_non_zero_when_a_core_task_dies(
    tmp_path: Path, videos: Path
) -> None:
    served = ServedProcess(tmp_path, videos)
    served.start()
    try:
        break_spool(served.spool)
        broke = time.monotonic()
        async with connect(served) as tablet:  # type: ignore[arg-type]
            # The prepared session's first event is the first the spool cannot write.
            ack = await tablet.request(prepare_body(8, "video/core.mp4", duration=30, fps=10))
            assert ack.body["result"] == "ok", ack.raw
            code = await anyio.to_thread.run_sync(served.wait, 60)
        print(f"khfsm serve exited {time.monotonic() - broke:.1f} s after the spool broke")
    finally:
        served.stop()
    assert code == 1
    log = served.log()
    assert "the event spool died" in log
    assert "khfsm stopped: the event spool died" in log
    # The writer carried on without its spool: the lane's session is stored and ended.
    recorder = open_recorder(served.url)
    try:
        rows = recorder.list_sessions()
    finally:
        recorder.close()
    assert len(rows) == 1 and rows[0].end_status is not None
