"""A site's own exercise, installed through the `khfsm.exercises` entry point, end to end:
prepared and run over the WebSocket with its own fault code and push code, then replayed.

The package is `tests/plugin` (installable with pip). Here it is registered the way an
installed distribution is found, by a `.dist-info` with its entry points on sys.path, so the
test leaves the environment as it found it.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

from khfsm.cli.main import cli
from khfsm.domain.events import RepCounted, SessionEnded
from khfsm.domain.replay import replay
from khfsm.registry import get_task, installed_tasks
from tests.server.conftest import (
    RunningServer,
    connect,
    op,
    prepare_body,
    running_server,
    video_name,
)

PLUGIN = Path(__file__).resolve().parents[1] / "plugin"


@pytest.fixture(scope="module")
def metronome_server(
    tmp_path_factory: pytest.TempPathFactory, videos: Path
) -> Iterator[RunningServer]:
    """A server started with the plug-in installed (a server serves the tasks installed when
    it starts, as a site installs a plug-in and then restarts its server)."""
    with (
        installed_plugin(tmp_path_factory.mktemp("plugin")),
        running_server(tmp_path_factory.mktemp("khfsm-server"), videos) as server,
    ):
        yield server


@contextmanager
def installed_plugin(tmp_path: Path) -> Iterator[None]:
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    dist_info = tmp_path / f"khfsm_metronome-{project['version']}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    entry_points = "".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items())
        for group, points in project["entry-points"].items()
    )
    (dist_info / "entry_points.txt").write_text(entry_points)
    saved = list(sys.path)
    sys.path[:0] = [str(tmp_path), str(PLUGIN)]
    installed_tasks.cache_clear()
    try:
        yield
    finally:
        sys.path[:] = saved
        sys.modules.pop("khfsm_metronome", None)
        installed_tasks.cache_clear()


@pytest.mark.anyio
async def test_a_plugin_exercise_runs_over_the_websocket_and_replays(
    metronome_server: RunningServer,
) -> None:
    server = metronome_server
    metronome = get_task("metronome")
    assert (metronome.code_digit, metronome.push_code) == (7, 7777)
    video = video_name("metronome")
    async with connect(server) as tablet:
        prepare = prepare_body(5, video, 4, 10, Task="metronome")
        ack = await tablet.request(prepare, code=7001)
        assert ack.body["result"] == "ok", ack.raw
        assert ack.code == 7001  # an ack echoes the request's own code
        # A plug-in declares no start position: readiness reports the person and view only.
        assert ack.body["readiness"]["person"] is True
        assert ack.body["readiness"]["in_position"] is None
        ack = await tablet.request(op("start", 5, task="metronome"), code=7002)
        assert ack.body["result"] == "ok", ack.raw
        pushes, terminal = await tablet.until_terminal(within=60)

    # Every push carries the plug-in's push code; its attempts alternate valid / 371.
    assert {push.code for push in [*pushes, terminal]} == {7777}
    statuses = [push.body["status"] for push in pushes]
    assert len(statuses) >= 2, "the clip shows somebody in at least 20 of the 40 frames"
    assert statuses == [[0] if n % 2 == 0 else [371] for n in range(len(statuses))]
    assert terminal.body["status"] == [-2] and terminal.body["Task"] == "metronome"
    assert terminal.body["total"] == len(statuses)

    session_id = terminal.body["session"]
    events = await anyio.to_thread.run_sync(server.recorder().events, session_id)
    reps = [e for e in events if isinstance(e, RepCounted)]
    assert [list(rep.status) for rep in reps] == statuses
    assert isinstance(events[-1], SessionEnded) and events[-1].status == -2
    assert replay(events, metronome).identical

    result = await anyio.to_thread.run_sync(
        lambda: CliRunner().invoke(
            cli, ["replay", session_id, "--database-url", server.database_url]
        )
    )
    assert result.exit_code == 0, result.output
    assert "metronome-1" in result.output and "identical" in result.output
