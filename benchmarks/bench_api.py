"""HTTP API benchmark (a script, not a test): open a 2-minute session in the review page's
way — its summary, then its keypoints — over real HTTP, 20 times; prints the median.

    KHFSM_KEYPOINT_CACHE=/work/kpcache .venv/bin/python benchmarks/bench_api.py [--postgres URL]

The session is real: the pose keypoints of a push-up clip (../shared/data/videos, extracted
once into $KHFSM_KEYPOINT_CACHE), looped to Duration 122 at 20 fps (2,440 frames) and judged
by the installed push-up rules, stored in a fresh SQLite store (or PostgreSQL in a throw-away
schema) and served by `khfsm serve`'s app under uvicorn.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy
import uvicorn

import khfsm
from khfsm.api.accounts import Accounts, Role
from khfsm.domain.events import SessionPrepared
from khfsm.domain.fold import fold
from khfsm.domain.run import judge_poses
from khfsm.offline.cache import cached_keypoints
from khfsm.registry import get_exercise
from khfsm.settings import Settings
from khfsm.store import open_recorder
from khfsm.store.urls import parse_url

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO.parent / "shared" / "data" / "videos" / "pushup_06_tayyab_pushup.mp4"
FPS, DURATION_S = 20.0, 122
FRAMES = round(FPS * DURATION_S)
REQUESTS = 20


def store_session(url: str) -> str:
    cache = os.environ.get("KHFSM_KEYPOINT_CACHE") or tempfile.mkdtemp(prefix="khfsm-kp-")
    keypoints = cached_keypoints(CLIP, FPS, cache)
    exercise = get_exercise("pushup")
    prepared = SessionPrepared(
        task="pushup",
        capture_id=1,
        level=5,
        fps=FPS,
        frames=FRAMES,
        source=CLIP.name,
        video_path="",
        engine_version=khfsm.__version__,
        rules_version=exercise.rules_version,
        frame_width=keypoints.frame_width,
        frame_height=keypoints.frame_height,
    )
    poses = itertools.islice(itertools.cycle(list(keypoints.poses())), FRAMES)
    events = judge_poses(exercise, prepared, poses)
    summary = fold(events)
    recorder = open_recorder(url, upgrade=True)
    session_id = uuid.uuid4().hex
    try:
        recorder.append(session_id, 0, events)
        engine = recorder.engine
        Accounts(engine).add("bench", Role.OPERATOR, "bench-password")
    finally:
        recorder.close()
    print(
        f"session: {summary.frames} frames, {len(events)} events, "
        f"{summary.count}/{summary.total} reps, end {summary.end_status}"
    )
    return session_id


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """`khfsm serve`'s app under uvicorn in a thread; yields the server's root URL."""
    from khfsm.server.app import create_app

    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=settings.port, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def database(postgres: str | None, root: Path) -> Iterator[str]:
    if not postgres:
        yield f"sqlite:///{root / 'khfsm.sqlite'}"
        return
    schema = f"khfsm_bench_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(parse_url(postgres))
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = parse_url(postgres).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL URL instead of SQLite")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="khfsm-bench-api-") as tmp,
        database(args.postgres, Path(tmp)) as url,
    ):
        session_id = store_session(url)
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        settings = Settings(data_dir=Path(tmp), database_url=url, port=port, host="127.0.0.1")
        with (
            serving(settings) as root,
            httpx.Client(base_url=f"{root}/api/v1", timeout=60) as client,
        ):
            login = client.post("/login", json={"username": "bench", "password": "bench-password"})
            login.raise_for_status()
            totals, summaries, points = [], [], []
            sizes = (0, 0)
            for _ in range(REQUESTS):
                start = time.perf_counter()
                summary = client.get(f"/sessions/{session_id}")
                middle = time.perf_counter()
                keypoints = client.get(f"/sessions/{session_id}/keypoints")
                end = time.perf_counter()
                summary.raise_for_status()
                keypoints.raise_for_status()
                sizes = (len(summary.content), len(keypoints.content))
                summaries.append(middle - start)
                points.append(end - middle)
                totals.append(end - start)
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"store: {backend}; {REQUESTS} requests each")
    print(f"summary:   median {statistics.median(summaries) * 1000:7.1f} ms  ({sizes[0]:,} bytes)")
    print(f"keypoints: median {statistics.median(points) * 1000:7.1f} ms  ({sizes[1]:,} bytes)")
    print(
        f"summary + keypoints: median {statistics.median(totals) * 1000:.1f} ms, "
        f"max {max(totals) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
