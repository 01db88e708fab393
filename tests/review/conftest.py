"""Real assessed sessions for the review tests.

One pushup session of a real clip through `khfsm.Site` (file camera, pose model, rules,
recording, SQLite store), with the result webhook posting to a real local receiver, is run
once per test session; each test works on its own copy of the store and the media root, so
rulings and tampering never leak between tests.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy

import khfsm
from khfsm.settings import Settings
from khfsm.store.sql import SqlRecorder, open_recorder
from khfsm.store.urls import parse_url
from tests.review.receiver import Receiver
from tests.server.conftest import CAMERA_GRACE_S, CLIP

DURATION_S = 20  # at 10 fps: 200 frames; the clip's slow push-ups give a few repetitions
PUBLIC_URL = "https://exam.example"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class Assessed:
    root: Path  # data dir: khfsm.sqlite and media/ (never changed by tests)
    session_id: str
    final: khfsm.Push
    webhook_bodies: list[dict[str, Any]]
    webhook_status: dict[str, Any]


@dataclass
class Store:
    url: str
    media: Path
    session_id: str
    recorder: SqlRecorder

    @property
    def database(self) -> Path:
        return Path(parse_url(self.url).database or "")


@pytest.fixture(scope="session")
def assessed(tmp_path_factory: pytest.TempPathFactory, videos: Path) -> Iterator[Assessed]:
    root = tmp_path_factory.mktemp("review-site")
    media = root / "media"
    media.mkdir()
    shutil.copyfile(videos / CLIP, media / "clip.mp4")
    receiver = Receiver().start()
    settings = Settings(
        data_dir=root,
        media_root=media,
        camera_grace_s=CAMERA_GRACE_S,
        webhook_url=receiver.url,
        public_url=PUBLIC_URL,
    )

    async def run() -> tuple[str, khfsm.Push, dict[str, Any]]:
        async with khfsm.Site(settings) as site:
            lane = await site.prepare(
                "pushup",
                camera="clip.mp4",
                level=5,
                duration=DURATION_S,
                fps=10,
                video="video/session.mp4",
            )
            await lane.start()
            final = await lane.result()
            webhook = site.webhook
            assert webhook is not None
            with anyio.fail_after(60):  # a hang guard, not a speed check
                await webhook.wait_idle()
            return lane.session_id, final, webhook.status()

    try:
        session_id, final, status = anyio.run(run)
    finally:
        receiver.stop()
    yield Assessed(root, session_id, final, list(receiver.bodies), status)


@pytest.fixture
def store(assessed: Assessed, tmp_path: Path) -> Iterator[Store]:
    """A private copy of the assessed site's SQLite store. The media root is the site's own
    (the session names its video by an absolute path under it); tests only read it."""
    for path in assessed.root.glob("khfsm.sqlite*"):
        shutil.copyfile(path, tmp_path / path.name)
    url = f"sqlite:///{tmp_path / 'khfsm.sqlite'}"
    recorder = open_recorder(url)
    try:
        yield Store(url, assessed.root / "media", assessed.session_id, recorder)
    finally:
        recorder.close()


@pytest.fixture
def postgres_store(assessed: Assessed, postgres_url: str) -> Iterator[Store]:
    """The assessed session copied event by event into a PostgreSQL schema of its own."""
    from khfsm.store import migrate

    schema = f"khfsm_review_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(parse_url(postgres_url))
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = (
        parse_url(postgres_url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    source = open_recorder(f"sqlite:///{assessed.root / 'khfsm.sqlite'}")
    try:
        migrate.upgrade(url)
        recorder = open_recorder(url)
        recorder.append(assessed.session_id, 0, source.events(assessed.session_id))
        yield Store(url, assessed.root / "media", assessed.session_id, recorder)
        recorder.close()
    finally:
        source.close()
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
