"""The public async API: `khfsm.Site` embedded in the test's own event loop, a real clip as
the camera, a real SQLite store, nothing between the caller and the lanes but the API."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import cv2
import pytest

import khfsm
from khfsm.domain.events import (
    FaceChecked,
    FrameObserved,
    RepCounted,
    SessionEnded,
    SessionPrepared,
)
from khfsm.domain.machine import State
from khfsm.domain.replay import replay
from khfsm.registry import get_exercise
from khfsm.settings import Settings
from khfsm.store import StoreError
from khfsm.vision.pose import load_pose_models
from tests.server.conftest import CAMERA_GRACE_S, CLIP, REPO_ROOT, assert_recording
from tests.server.test_trace import face_material


@pytest.fixture
def site_settings(tmp_path: Path, videos: Path) -> Settings:
    media = tmp_path / "media"
    media.mkdir()
    shutil.copyfile(videos / CLIP, media / "clip.mp4")  # a link out of the root is refused
    return Settings(data_dir=tmp_path, media_root=media, camera_grace_s=CAMERA_GRACE_S)


@pytest.fixture
async def site(site_settings: Settings) -> AsyncIterator[khfsm.Site]:
    async with khfsm.Site(site_settings) as opened:
        yield opened


@pytest.mark.anyio
async def test_a_pushup_test_from_prepare_to_its_stored_replayable_end(
    site: khfsm.Site, site_settings: Settings
) -> None:
    # 8 s at 10 fps: the clip's first push-up ends at about 7 s, then time is up.
    lane = await site.prepare(
        "pushup", camera="clip.mp4", level=5, duration=8, fps=10, video="video/a.mp4"
    )
    assert lane.state is State.PREPARED and lane.task == "pushup" and lane.capture_id == 0
    seen = lane.readiness  # what the camera showed at prepare (tests/server/test_readiness.py)
    assert seen is not None and seen.person
    assert await lane.start() == {"readiness": seen.as_ack()}
    pushes = [push async for push in lane.progress()]

    *reps, final = pushes
    assert reps and all(push.status == (0,) and not push.final for push in reps)
    assert [push.total for push in reps] == list(range(1, len(reps) + 1))
    assert final.final and final.status == (-2,) and final.message == "time is up"
    assert final.details["frames"] == 80 and final.count == len(reps)
    assert lane.state is State.STOPPED and lane.status() == final
    assert await lane.stop() == final  # idempotent once ended

    events = await anyio.to_thread.run_sync(site.recorder.events, lane.session_id)
    assert isinstance(events[0], SessionPrepared) and events[0].task == "pushup"
    assert [e.frame for e in events if isinstance(e, FrameObserved)] == list(range(80))
    assert [e.total for e in events if isinstance(e, RepCounted)] == [p.total for p in reps]
    ended = events[-1]
    assert isinstance(ended, SessionEnded) and ended.status == -2 and ended.video_sha256
    assert replay(events, get_exercise("pushup")).identical
    video = site_settings.resolved_media_root / "video" / "a.mp4"
    assert_recording(video, 80, 10, [e for e in events if isinstance(e, FrameObserved)])


@pytest.mark.anyio
async def test_stop_ends_a_running_test_and_returns_its_final_push(site: khfsm.Site) -> None:
    lane = await site.prepare(
        "pushup", camera="clip.mp4", duration=60, fps=10, video="video/stop.mp4", capture_id=3
    )
    await lane.start()
    await anyio.sleep(1.0)
    final = await lane.stop()
    assert final.final and final.status == (-1,) and final.message == "stopped by the operator"
    assert final.capture_id == 3 and final.session == lane.session_id
    assert 0 < final.details["frames"] < 600
    assert [push async for push in lane.progress()] == [final]  # a late reader gets the end


@pytest.mark.anyio
async def test_refusals_raise_request_error_with_the_operators_words(site: khfsm.Site) -> None:
    lane = await site.prepare("pushup", camera="clip.mp4", duration=30, fps=10, video="v/1.mp4")
    with pytest.raises(khfsm.RequestError, match="is already prepared; start it or stop it"):
        await site.prepare("pushup", camera="clip.mp4", duration=30, fps=10, video="v/2.mp4")
    with pytest.raises(khfsm.RequestError, match="is being recorded by pushup capture 0"):
        await site.prepare(
            "pushup", camera="clip.mp4", duration=30, fps=10, video="v/1.mp4", capture_id=1
        )
    with pytest.raises(khfsm.RequestError, match="outside the media root"):
        await site.prepare("situp", camera="clip.mp4", duration=30, fps=10, video="/etc/evil.mp4")
    with pytest.raises(khfsm.RequestError, match="Level must be <= 5"):
        await site.prepare("situp", camera="clip.mp4", duration=30, video="v/3.mp4", level=9)
    with pytest.raises(khfsm.RequestError, match="unknown Task 'juggling'") as unknown:
        await site.prepare("juggling", camera="clip.mp4", duration=30, video="v/4.mp4")
    assert isinstance(unknown.value, khfsm.KhfsmError)  # one root for every refusal
    await lane.stop()  # stopped before it started: ends at once with −1
    assert lane.status().status == (-1,) and lane.status().details["frames"] == 0
    with pytest.raises(khfsm.RequestError, match="has ended; send prepare"):
        await lane.start()


@pytest.mark.anyio
async def test_leaving_the_site_ends_running_lanes_with_minus_6_and_stores_them(
    site_settings: Settings,
) -> None:
    async with khfsm.Site(site_settings) as site:
        lane = await site.prepare(
            "pushup", camera="clip.mp4", duration=60, fps=10, video="video/shutdown.mp4"
        )
        await lane.start()
        await anyio.sleep(0.5)
    final = lane.status()
    assert final.final and final.status == (-6,)
    assert final.message == "server shutting down"
    async with khfsm.Site(site_settings) as reopened:
        events = await anyio.to_thread.run_sync(reopened.recorder.events, lane.session_id)
    ended = events[-1]
    assert isinstance(ended, SessionEnded) and ended.status == -6 and ended.video_sha256


@pytest.mark.anyio
async def test_a_site_must_be_open_to_prepare(site_settings: Settings) -> None:
    with pytest.raises(RuntimeError, match="the site is not open"):
        await khfsm.Site(site_settings).prepare(
            "pushup", camera="clip.mp4", duration=3, video="v.mp4"
        )


def readme_example() -> str:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Embedding the engine (async API)", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_runs_and_counts_the_clips_first_push_up(
    tmp_path: Path, videos: Path
) -> None:
    script = tmp_path / "count_pushups.py"
    script.write_text(readme_example(), encoding="utf-8")
    media = tmp_path / "media"
    media.mkdir()
    shutil.copyfile(videos / CLIP, media / "clip.mp4")  # a link out of the root is refused
    result = subprocess.run(
        [sys.executable, str(script), str(media), "clip.mp4", "8"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "rep 1: status 0, 1 valid", result.stdout
    assert lines[-1].startswith("ended: time is up; "), result.stdout
    assert list((media / "video").glob("*.mp4")) and (media / "khfsm.sqlite").is_file()


@pytest.mark.anyio
async def test_a_face_check_answers_its_start_with_the_crop_and_ends_with_its_outcome(
    site: khfsm.Site, site_settings: Settings
) -> None:
    media = site_settings.resolved_media_root
    photo, enrolled = await anyio.to_thread.run_sync(face_material, media)
    lane = await site.prepare_face_check(camera=photo, enrolled=enrolled, capture_id=2)
    answer = await lane.start(duration=10)
    assert (media / answer["filename"]).is_file()
    final = await lane.result()
    assert final.final and final.status == (0,) and (final.total, final.count) == (1, 1)
    assert final.details["similarity"] >= final.details["threshold"]
    assert final.message.startswith("the face matches the enrolled candidate")
    events = await anyio.to_thread.run_sync(site.recorder.events, lane.session_id)
    checked = next(e for e in events if isinstance(e, FaceChecked))
    assert checked.filename == answer["filename"] and checked.accepted


@pytest.mark.anyio
async def test_a_site_for_a_hundred_lanes_has_a_camera_thread_for_each(
    site_settings: Settings,
) -> None:
    """A GPU site runs a hundred lanes: with fewer camera threads than lanes, live cameras
    waiting on the network would hold them all and the other lanes' frames would queue."""
    settings = site_settings.model_copy(update={"max_lanes": 100})
    async with khfsm.Site(settings) as big:
        ctx = big.registry.ctx
        assert ctx.camera_limiter.total_tokens == ctx.work_limiter.total_tokens == 100
    async with khfsm.Site(site_settings) as small:  # never fewer than 64 (abandoned reads)
        assert small.registry.ctx.camera_limiter.total_tokens == 64


@pytest.mark.anyio
async def test_a_second_site_on_the_same_sqlite_store_is_refused_before_it_ends_anything(
    site: khfsm.Site, site_settings: Settings, tmp_path: Path
) -> None:
    """Its own data directory (spool) but the first site's SQLite file: its start would end
    the first site's open sessions, so it is refused before it reads the store."""
    lane = await site.prepare("pushup", camera="clip.mp4", duration=30, video="video/held.mp4")
    await site.writer.flush(lane.session_id)  # stored open, as a crash would leave it
    other = site_settings.model_copy(
        update={
            "data_dir": tmp_path / "second",
            "database_url": site_settings.resolved_database_url,
        }
    )
    with pytest.raises(StoreError, match="another khfsm server uses the SQLite store"):
        async with khfsm.Site(other):
            pass
    row = await anyio.to_thread.run_sync(site.recorder.session, lane.session_id)
    assert row is not None and row.state == State.PREPARED.value and row.end_status is None
    assert not (tmp_path / "second" / "spool").exists()  # refused before its recovery


@pytest.mark.anyio
@pytest.mark.parametrize(("workers", "opencv_threads", "expected"), [(1, 0, 1), (1, 3, 3)])
async def test_opencvs_pool_is_sized_to_the_inference_workers_unless_set(
    site_settings: Settings, workers: int, opencv_threads: int, expected: int
) -> None:
    """Not a thread per core in every server process (README: a fifth of 8 GPU servers' CPU
    went to their pools): as many as the pose batches that run at once, or as asked."""
    before = cv2.getNumThreads()
    settings = site_settings.model_copy(
        update={"inference_workers": workers, "opencv_threads": opencv_threads}
    )
    try:
        cv2.setNumThreads(7)  # whatever the process had: the site sets its own
        async with khfsm.Site(settings):
            assert cv2.getNumThreads() == expected
    finally:
        cv2.setNumThreads(before)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("crop_threads", "expected", "said"), [(0, 1, "cropped in 1 thread)"), (2, 2, "in 2 threads)")]
)
async def test_a_pose_batch_is_cropped_in_the_threads_planned_or_asked(
    site_settings: Settings,
    crop_threads: int,
    expected: int,
    said: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """On CPU a batch holds one frame: no helper threads unless asked (KHFSM_CROP_THREADS);
    the site's start-up line says how many."""
    settings = site_settings.model_copy(update={"crop_threads": crop_threads})
    models = load_pose_models(settings.inference_threads, settings.providers, settings.models_dir)
    try:
        with caplog.at_level(logging.INFO, logger="khfsm.site"):
            async with khfsm.Site(settings) as site:
                assert site.pose.crop_threads == models.crop_threads == expected
        ready = [r.getMessage() for r in caplog.records if " ready: store " in r.getMessage()]
        assert len(ready) == 1 and said in ready[0], ready
    finally:
        models.crop_in_threads(1)  # the site's models are cached per process: as found
