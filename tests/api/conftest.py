"""A real khfsm server (uvicorn, real HTTP) holding real assessed sessions, and its users.

One server for the module set: two push-up sessions of the shared clip are run through the
live pipeline by a WebSocket tablet (lane 11 until time is up, lane 12 stopped by the
operator), then users of every role are added to the server's own database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from khfsm.api.accounts import Accounts, Role
from khfsm.store.engine import create_store_engine
from tests.server.conftest import RunningServer, connect, op, prepare_body, running_server

PASSWORD = "correct horse battery"
TIME_UP_LANE, STOPPED_LANE = 11, 12
DURATION_S, FPS = 12, 10  # 120 frames: the clip's first push-ups


@dataclass
class ApiServer:
    running: RunningServer
    tokens: dict[str, str]  # role -> bearer token of a user with that role
    time_up: dict[str, Any]  # the terminal push of each session
    stopped: dict[str, Any]

    @property
    def url(self) -> str:
        return self.running.http_url + "/api/v1"

    @property
    def media(self) -> Path:
        return self.running.media

    def client(self, role: str | None = None) -> httpx.Client:
        headers = {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


async def _run_sessions(running: RunningServer) -> tuple[dict[str, Any], dict[str, Any]]:
    async with connect(running) as tablet:
        for lane, duration in ((TIME_UP_LANE, DURATION_S), (STOPPED_LANE, 60)):
            body = prepare_body(lane, f"video/api_{lane}.mp4", duration, FPS)
            ack = await tablet.request(body)
            assert ack.body["result"] == "ok", ack.raw
            assert (await tablet.request(op("start", lane))).body["result"] == "ok"
        await anyio.sleep(3.0)
        await tablet.send(op("stop", STOPPED_LANE))
        terminals: dict[int, dict[str, Any]] = {}
        with anyio.fail_after(60):
            while len(terminals) < 2:
                message = await tablet.recv(within=60)
                if message.terminal:
                    terminals[message.body["CaptureID"]] = message.body
    return terminals[TIME_UP_LANE], terminals[STOPPED_LANE]


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory, videos: Path) -> Iterator[ApiServer]:
    with running_server(tmp_path_factory.mktemp("khfsm-api"), videos) as running:
        time_up, stopped = anyio.run(_run_sessions, running)
        engine = create_store_engine(running.database_url)
        try:
            accounts = Accounts(engine)
            tokens = {}
            for role in Role:
                accounts.add(role.value, role, PASSWORD)
                tokens[role.value] = accounts.issue_token(role.value)
        finally:
            engine.dispose()
        yield ApiServer(running, tokens, time_up, stopped)


# Empty databases on each backend, as the store tests use them.
from tests.store.conftest import postgres_empty_url, sqlite_empty_url  # noqa: E402, F401
