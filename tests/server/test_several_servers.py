"""Several `khfsm serve` processes on one machine, as the README's "More lanes than one process
carries" sets them up: each with its own data directory (its spool), one PostgreSQL store and
one media root shared by all.

What that recipe promises, checked with real processes: a server that crashes and restarts
ends its own sessions (-7) and leaves the other server's running lane alone; both servers'
sessions are in the one store, each with a valid hash chain; and any server serves any
session's video through the API.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from khfsm.domain.codes import EndStatus
from khfsm.store import open_recorder
from tests.server.conftest import CLIP, connect, op, prepare_body
from tests.server.served import ServedProcess, khfsm_cli
from tests.store.conftest import postgres_empty_url  # noqa: F401 - a fixture used below

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.video]

FPS = 5
MIN_FRAMES = 10  # each lane has assessed this many frames (2 s) before the crash


@pytest.fixture
def servers(
    tmp_path: Path,
    videos: Path,
    postgres_empty_url: str,  # noqa: F811
) -> Iterator[tuple[ServedProcess, ServedProcess, Path]]:
    media = tmp_path / "media"
    media.mkdir()
    shutil.copyfile(videos / CLIP, media / "clip.mp4")
    one = ServedProcess(tmp_path / "one", videos, database_url=postgres_empty_url)
    two = ServedProcess(tmp_path / "two", videos, database_url=postgres_empty_url)
    try:
        yield one, two, media
    finally:
        one.stop()
        two.stop()


def lane_of(served: ServedProcess, capture: int) -> dict[str, Any] | None:
    _, health = served.health()
    return next((lane for lane in health["lane_list"] if lane["capture_id"] == capture), None)


async def until_assessed(served: ServedProcess, capture: int, frames: int) -> dict[str, Any]:
    with anyio.fail_after(60):  # a busy machine runs the pose model slowly
        while True:
            lane = await anyio.to_thread.run_sync(lane_of, served, capture)
            if lane is not None and lane["frames"] >= frames:
                return lane
            await anyio.sleep(0.2)


async def test_a_server_restarting_on_the_shared_store_ends_only_its_own_sessions(
    servers: tuple[ServedProcess, ServedProcess, Path],
) -> None:
    one, two, media = servers
    shared = {"KHFSM_MEDIA_ROOT": str(media), "KHFSM_API_SECRET_KEY": "one-key-for-the-site"}
    one.start(**shared)
    two.start(**shared)
    async with connect(one) as first, connect(two) as second:  # type: ignore[arg-type]
        for tablet, capture in ((first, 1), (second, 2)):
            body = prepare_body(capture, f"video/lane_{capture}.mp4", duration=60, fps=FPS)
            assert (await tablet.request(body)).body["result"] == "ok"
            assert (await tablet.request(op("start", capture))).body["result"] == "ok"
        running = await until_assessed(one, 1, MIN_FRAMES)
        crashed = await until_assessed(two, 2, MIN_FRAMES)
    # The tablets hung up; their lanes run on. Server two crashes and is restarted.
    await anyio.to_thread.run_sync(two.kill)
    await anyio.to_thread.run_sync(lambda: two.start(**shared))

    # The restarted server ended its own session; the other server's lane runs on.
    recorder = open_recorder(one.url)
    try:
        row = recorder.session(crashed["session"])
        assert row is not None and row.end_status == EndStatus.SERVER_CRASHED
        row = recorder.session(running["session"])
        assert row is not None and row.end_status is None
    finally:
        recorder.close()
    later = await until_assessed(one, 1, running["frames"] + FPS)
    assert later["session"] == running["session"] and later["state"] == "running"

    # Stopped as usual: its final push (sent once the end is stored), then the stop's ack.
    async with connect(one) as first:  # type: ignore[arg-type]
        await first.send(op("stop", 1))
        _, final = await first.until_terminal()
        assert final.body["status"] == [EndStatus.STOPPED]
        assert (await first.ack()).body["result"] == "ok"
    recorder = open_recorder(one.url)
    try:
        row = recorder.session(running["session"])
        assert row is not None and row.end_status == EndStatus.STOPPED
        for session in (running["session"], crashed["session"]):
            assert recorder.verify_chain(session).ok
    finally:
        recorder.close()

    # Either server serves either server's evidence: the store and the media root are shared.
    added = khfsm_cli(
        *("users", "add", "judge", "--role", "reviewer", "--password-stdin"),
        *("--database-url", one.url),
        stdin="a password for the judge\n",
    )
    assert added.returncode == 0, added.stdout + added.stderr
    issued = khfsm_cli("users", "token", "judge", "--database-url", one.url)
    assert issued.returncode == 0, issued.stdout + issued.stderr
    token = issued.stdout.strip().splitlines()[-1].strip()
    url = f"http://127.0.0.1:{two.port}/api/v1/sessions/{running['session']}/video"
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.content == (media / "video" / "lane_1.mp4").read_bytes()


def test_a_second_server_on_a_spool_or_sqlite_store_in_use_is_refused_in_one_line(
    tmp_path: Path, videos: Path
) -> None:
    """Following the recipe with SQLite, or with one data directory for two servers: the
    second `khfsm serve` stops at once with what to do, not a startup traceback."""
    first = ServedProcess(tmp_path / "first", videos)
    first.start()
    try:
        attempts = {
            "spool": {"KHFSM_DATA_DIR": str(first.root)},
            "SQLite store": {
                "KHFSM_DATA_DIR": str(tmp_path / "second"),
                "KHFSM_DATABASE_URL": first.url,
            },
        }
        for held, env in attempts.items():
            refused = subprocess.run(
                [str(Path(sys.executable).with_name("khfsm")), "serve", "--port", "0"],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert f"another khfsm server uses the {held}" in refused.stderr
            assert "Traceback" not in refused.stdout + refused.stderr
        _, health = first.health()
        assert health["status"] == "ok"  # the first server never noticed
    finally:
        first.stop()
