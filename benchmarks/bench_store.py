"""Event store benchmark (a script, not a test): append, load and replay a 2-minute session.

    .venv/bin/python benchmarks/bench_store.py [--postgres URL]

The session is what a lane records at 20 fps for Duration 122: 2,440 FrameObserved events
of 33 keypoints (a random walk around a body moving up and down every 2 s) and the reps the
rules derive. PostgreSQL is taken from --postgres, else $KHFSM_TEST_POSTGRES_URL, and runs
in a throw-away schema. Targets: appends >= 1,000 frames/s (50x real time) on both stores,
load + replay < 0.2 s.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy

from khfsm.domain.events import Event, FrameObserved, SessionPrepared, SessionStarted
from khfsm.domain.exercise import RepJudged, RulesConfig, Verdict
from khfsm.domain.pose import Pose
from khfsm.domain.replay import replay
from khfsm.domain.session import Session
from khfsm.store import EventRecorder, open_recorder
from khfsm.store.urls import parse_url, redact_database_url

FPS = 20.0
DURATION_S = 122
FRAMES = round(DURATION_S * FPS)  # 2440
BATCH_FRAMES = 20  # what EventWriter typically writes per transaction at 20 fps, 1 lane


@dataclass(frozen=True)
class BenchReferenceExercise:
    """BENCHMARK REFERENCE RULES, not a real exercise: a rep is the left shoulder going down
    past one line and back up past another (hysteresis), judged by its depth. Computes an
    elbow angle per frame so that the per-frame cost resembles real rules."""

    task: str = "bench-reference"
    rules_version: str = "bench-1"
    code_digit: int = 9
    push_code: int = 9999

    @property
    def faults(self) -> Mapping[int, str]:
        return {391: "not low enough"}

    def initial_state(self, config: RulesConfig) -> Any:
        return (None, 0.0)

    def step(
        self, config: RulesConfig, state: Any, frame: int, pose: Pose | None
    ) -> tuple[Any, Sequence[Verdict]]:
        if pose is None:
            return state, ()
        shoulder, elbow, wrist = pose.xy(11), pose.xy(13), pose.xy(15)
        a, b = shoulder - elbow, wrist - elbow
        cosine = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))
        angle = math.degrees(math.acos(max(-1.0, min(1.0, cosine))))
        down_since, deepest = state
        y = float(shoulder[1])
        if down_since is None:
            return ((frame, y) if y > 260 else state), ()
        deepest = max(deepest, y)
        if y < 220:
            status = (0,) if deepest > 270 else (391,)
            verdict = RepJudged(down_since, frame, status, {"depth": deepest, "angle": angle})
            return (None, 0.0), (verdict,)
        return (down_since, deepest), ()

    def finish(self, config: RulesConfig, state: Any, frame: int) -> Sequence[Verdict]:
        return ()


def random_walk_poses(frames: int, seed: int = 1) -> list[Pose | None]:
    rng = np.random.default_rng(seed)
    base = np.column_stack(
        [rng.uniform(200, 440, 33), rng.uniform(120, 360, 33), rng.normal(0, 0.1, 33)]
    )
    drift = np.zeros_like(base)
    poses: list[Pose | None] = []
    for frame in range(frames):
        drift += rng.normal(0, 0.8, drift.shape)
        drift *= 0.95  # stays near the body instead of wandering off
        landmarks = np.empty((33, 5), dtype=np.float32)
        landmarks[:, :3] = base + drift
        bob = 45 * math.sin(2 * math.pi * frame / (2.0 * FPS))  # one push-up every 2 s
        landmarks[:, 1] += bob
        landmarks[11, 1] = 240 + bob + rng.normal(0, 2)
        landmarks[:, 3:] = rng.uniform(0.8, 1.0, (33, 2))
        world = rng.normal(0, 0.4, (33, 3)).astype(np.float32)
        person = rng.random() > 0.02  # now and then the model finds nobody
        poses.append(Pose(landmarks, world, float(rng.uniform(0.8, 1))) if person else None)
    return poses


def record(exercise: Any, poses: Sequence[Pose | None]) -> list[Event]:
    session = Session(exercise, who="bench lane")
    events: list[Event] = [
        *session.prepare(
            SessionPrepared(
                task=exercise.task,
                capture_id=1,
                level=5,
                fps=FPS,
                frames=FRAMES,
                source="rtsp://camera/1",
                video_path="/videos/bench.mp4",
                engine_version="bench",
                rules_version=exercise.rules_version,
            )
        ),
        *session.start(SessionStarted()),
    ]
    for frame, pose in enumerate(poses):
        if session.machine.ended:
            break
        events += session.observe(FrameObserved.of(frame, pose))
    return events


def batches(events: Sequence[Event], frames_per_batch: int) -> list[list[Event]]:
    out: list[list[Event]] = [[]]
    frames = 0
    for event in events:
        out[-1].append(event)
        if isinstance(event, FrameObserved):
            frames += 1
            if frames % frames_per_batch == 0:
                out.append([])
    return [batch for batch in out if batch]


def append_rate(recorder: EventRecorder, events: Sequence[Event], per_batch: int | None) -> float:
    session_id = uuid.uuid4().hex
    chunks = [list(events)] if per_batch is None else batches(events, per_batch)
    started = time.perf_counter()
    seq = 0
    for chunk in chunks:
        recorder.append(session_id, seq, chunk)
        seq += len(chunk)
    elapsed = time.perf_counter() - started
    return FRAMES / elapsed


def best_of(repeats: int, action: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return min(times), result


def bench_store(name: str, url: str, events: Sequence[Event], size: Callable[[], int]) -> None:
    recorder = open_recorder(url, upgrade=True)
    try:
        frames = sum(isinstance(e, FrameObserved) for e in events)
        assert frames == FRAMES, frames
        before = size()
        session_id = uuid.uuid4().hex
        seq = 0
        for chunk in batches(events, BATCH_FRAMES):
            recorder.append(session_id, seq, chunk)
            seq += len(chunk)
        grown = size() - before
        rates = [append_rate(recorder, events, BATCH_FRAMES) for _ in range(3)]
        big = [append_rate(recorder, events, None) for _ in range(3)]
        print(f"\n[{name}] {redact_database_url(url)}")
        print(
            f"  append, {BATCH_FRAMES} frames per transaction: "
            f"{statistics.median(rates):8.0f} frames/s  "
            f"({statistics.median(rates) / FPS:.0f}x real time)"
        )
        print(
            f"  append, one transaction per session:     {statistics.median(big):8.0f} frames/s  "
            f"({statistics.median(big) / FPS:.0f}x real time)"
        )
        load_s, loaded = best_of(5, lambda: recorder.events(session_id))
        assert loaded == list(events)
        print(f"  load (read + decode {len(events)} events):  {load_s * 1000:8.1f} ms")
        print(f"  size on disk per session:                {grown / 1024:8.0f} KiB")
        for exercise in exercises(events):
            session_events = loaded if exercise.task == events[0].task else None  # type: ignore[attr-defined]
            if session_events is None:
                session_events = record(exercise, POSES)
                recorder.append(uuid.uuid4().hex, 0, session_events)
            replay_s, report = best_of(5, _replayer(session_events, exercise))
            label = (
                "BENCHMARK REFERENCE rules"
                if exercise is REFERENCE
                else f"real {exercise.task} rules over the same frames"
            )
            print(
                f"  replay ({label}): {replay_s * 1000:8.1f} ms, "
                f"{'identical' if report.identical else 'DIVERGED'}, "
                f"{report.replayed.count}/{report.replayed.total} reps; "
                f"load + replay {(load_s + replay_s) * 1000:.1f} ms"
            )
    finally:
        recorder.close()


def _replayer(events: Sequence[Event], exercise: Any) -> Callable[[], Any]:
    return lambda: replay(events, exercise)


def exercises(events: Sequence[Event]) -> list[Any]:
    from khfsm.registry import installed_exercises

    found: list[Any] = [REFERENCE]
    real = installed_exercises().get("pushup")
    if real is not None:
        found.append(real)
    else:
        print("  (the real pushup exercise is not installed yet: only the reference rules)")
    return found


def sqlite_size(path: Path) -> Callable[[], int]:
    def size() -> int:
        engine = sqlalchemy.create_engine(f"sqlite:///{path}")
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))

    return size


def postgres_size(url: str) -> Callable[[], int]:
    def size() -> int:
        engine = sqlalchemy.create_engine(parse_url(url))
        with engine.connect() as connection:
            value = connection.exec_driver_sql(
                "select pg_total_relation_size('events') + pg_total_relation_size('sessions')"
            ).scalar()
        engine.dispose()
        return int(value or 0)

    return size


REFERENCE = BenchReferenceExercise()
POSES = random_walk_poses(FRAMES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("KHFSM_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    events = record(REFERENCE, POSES)
    print(
        f"session: {len(events)} events, {FRAMES} frames ({DURATION_S} s at {FPS:g} fps), "
        f"{sum(1 for e in events if type(e).__name__ == 'RepCounted')} RepCounted; "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.sqlite"
        bench_store(
            "SQLite (WAL, synchronous=NORMAL)", f"sqlite:///{path}", events, sqlite_size(path)
        )
    if not args.postgres:
        print("\n[PostgreSQL] skipped: pass --postgres URL or set KHFSM_TEST_POSTGRES_URL")
        return
    schema = f"khfsm_bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(parse_url(args.postgres))
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        url = parse_url(args.postgres).update_query_dict({"options": f"-csearch_path={schema}"})
        text = url.render_as_string(hide_password=False)
        bench_store("PostgreSQL", text, events, postgres_size(text))
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


if __name__ == "__main__":
    main()
