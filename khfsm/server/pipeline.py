"""An exercise lane: its work in the lane template (`khfsm.server.lane`) is this pipeline.

    camera stage ──frames──▶ assess stage ──assessed frames──▶ record stage
    (PyAV demux+decode in a  (pose via the shared       (encoded fMP4, only for
     worker thread, frame     PoseService, the rules,    sources without a remuxable
     selection, file pacing;  events, pushes)            codec: MJPEG, devices)
     H.264/H.265 packets
     remuxed right there)

Frame selection: assessed frame k is the first camera frame whose timestamp (see
`khfsm.server.camera`) is >= k / Fps; a slow camera's frame may serve several k, so the
test always lasts round(Duration × Fps) frames of camera time. A file is played at its own
frame rate, like a camera.

Recording: a camera that sends H.264/H.265 is recorded by remuxing its packets, every camera
frame from the first keyframe on, including those the assessment skips (a 25 fps camera
assessed at 20 fps); the packets demuxed up to an assessed frame are recorded once that frame
is assessed, so the video ends with the last assessed frame, and each `FrameObserved.pts` is
the presentation time, in the video, of the frame it assessed. Other sources (MJPEG, device
indexes) are encoded: frame k of that video is assessed frame k, at pts k / Fps. A file that
ends before the test does ends it at once (−4, "video file ended").

`stop` cancels the wait for the next frame (a frame being assessed is finished first, a few
tens of ms); a camera that delivers no frame for `camera_grace_s` ends the test with −4; an
unexpected error ends it with −5 (traceback in the server log only). In every case the
recording is closed and hashed, the sealed end is durable, and only then is the terminal push
sent.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio
import av
import numpy as np
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from anyio.streams.memory import MemoryObjectSendStream

import khfsm
from khfsm.domain.codes import EndStatus
from khfsm.domain.events import (
    Event,
    FrameObserved,
    ReadinessReported,
    SessionPrepared,
    SourceFailed,
)
from khfsm.domain.pose import Pose
from khfsm.domain.session import Session
from khfsm.domain.timeline import assessed_until, frame_budget
from khfsm.hashing import file_sha256
from khfsm.registry import get_exercise
from khfsm.server.camera import CameraError, CameraReader, CapturedFrame, open_camera
from khfsm.server.context import LaneContext
from khfsm.server.lane import Lane, Phase, Reply, lane_name
from khfsm.server.lanes import Recordings
from khfsm.server.paths import CameraSource, parse_source
from khfsm.server.protocol import ExercisePrepare, Request, RequestError
from khfsm.server.readiness import READINESS_FRAMES, look
from khfsm.server.recording import (
    Evidence,
    PacketRecorder,
    RecordingError,
    VideoExistsError,
    VideoRecorder,
)
from khfsm.server.sources import FIRST_FRAME_ALLOWANCE_S, probe_camera
from khfsm.vision.picture import Image

log = logging.getLogger(__name__)

FRAME_QUEUE = 8  # camera -> assessment: a bounded backlog (~0.4 s at 20 fps)
RECORD_QUEUE = 20  # assessment -> encoder
RETRY_S = 0.05  # pause between reads of a source that has no frame right now
REOPEN_S = 1.0  # a live source that stopped delivering is reopened this often
LATENCY_SAMPLES = 4000
# The lane's latency now, apart from its start (each lane's first seconds also run the
# detector while the examinee is chosen): its last 10 s at 20 fps.
RECENT_LATENCY_SAMPLES = 200
TAIL_S = 2.0  # a remuxed recording goes on this long past the last assessed frame
STAGES = ("decode", "pose", "rules", "record")


@dataclass(frozen=True, slots=True)
class CameraFrame:
    index: int  # assessed frame index k
    # What the pose models take: a remuxed camera's picture as its planes (no whole-picture
    # conversion); BGR where the recording is encoded from these very images.
    image: Image
    captured_at: float  # monotonic time the frame became available to the server
    pts: float  # presentation time of this frame in the recording, seconds
    remuxed: bool = False  # the recording is the camera's packets (else: these frames)


@dataclass(frozen=True, slots=True)
class SourceLost:
    message: str


class LaneStats:
    """Live figures for /healthz and the benchmark."""

    def __init__(self) -> None:
        self.started_at: float | None = None
        self.ended_at: float | None = None  # the assessment's end: its rate is over that span
        self.assessed = 0
        self.latency_s: deque[float] = deque(maxlen=LATENCY_SAMPLES)  # capture -> verdict
        self.backlog = 0  # frames waiting between camera and assessment
        self.decoder = ""  # where the camera is decoded ("cpu", "cuda"), once it sends frames
        # CPU seconds spent on this lane, by stage (thread CPU time; pose: the lane's share
        # of each batch it was in)
        self.cpu_s = dict.fromkeys(STAGES, 0.0)

    def snapshot(self) -> dict[str, float | int | str]:
        until = self.ended_at if self.ended_at is not None else time.monotonic()
        elapsed = until - self.started_at if self.started_at is not None else 0.0
        ordered = sorted(self.latency_s)
        recent = sorted(itertools.islice(reversed(self.latency_s), RECENT_LATENCY_SAMPLES))
        return {
            "assessed": self.assessed,
            "assessed_fps": round(self.assessed / elapsed, 2) if elapsed > 0 else 0.0,
            "backlog": self.backlog,
            "decoder": self.decoder,
            "latency_ms_p50": round(1000 * _quantile(ordered, 0.5), 1),
            "latency_ms_p99": round(1000 * _quantile(ordered, 0.99), 1),
            "latency_ms_p99_recent": round(1000 * _quantile(recent, 0.99), 1),
            **{f"cpu_s_{stage}": round(seconds, 3) for stage, seconds in self.cpu_s.items()},
        }


def _video_exists(error: BaseException) -> VideoExistsError | None:
    """The VideoExistsError in `error`, also where task groups wrapped it."""
    if isinstance(error, VideoExistsError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (found := _video_exists(inner)) is not None:
                return found
    return None


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def prepare_exercise(
    ctx: LaneContext, request: Request, recordings: Recordings
) -> ExerciseLane:
    """Check everything the test needs (rules, camera, video path) and create the session."""
    if not isinstance(request, ExercisePrepare):  # pragma: no cover - the protocol's choice
        raise TypeError(f"an exercise is prepared with ExercisePrepare, not {request!r}")
    exercise = get_exercise(request.Task)
    who = lane_name(request.Task, request.CaptureID)
    video = ctx.media.resolve(request.ModelPath, "ModelPath")
    recorder = recordings.recorded_by(video)
    if recorder is not None:
        raise RequestError(
            f"ModelPath {request.ModelPath} is being recorded by {recorder}; "
            "each test needs its own video file"
        )
    source = parse_source(request.CapturePath, ctx.media, ctx.settings.allowed_schemes)
    if video.exists():
        raise RequestError(
            f"ModelPath {request.ModelPath} already exists; each test needs a new video file "
            "(the old one is evidence and is never overwritten)"
        )
    frames = frame_budget(request.Duration, request.Fps)
    if frames < 1:
        raise RequestError(
            f"Duration {request.Duration} s at Fps {request.Fps} is less than one frame"
        )
    probe = await probe_camera(ctx, source, keep=READINESS_FRAMES)
    info = probe.info
    session = Session(exercise, who=who)
    prepared = SessionPrepared(
        task=request.Task,
        capture_id=request.CaptureID,
        level=request.Level,
        fps=float(request.Fps),
        frames=frames,
        source=source.display,
        video_path=str(video),
        engine_version=khfsm.__version__,
        rules_version=exercise.rules_version,
        models=dict(ctx.pose_models),
        frame_width=info.width,
        frame_height=info.height,
        prepared_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
    )
    try:
        events = session.prepare(prepared)
    except ValueError as error:
        raise RequestError(str(error)) from None
    lane = ExerciseLane(ctx, request.CaptureID, session, source, video)
    report = await look(ctx, lane.key, probe.images, request.Level, exercise)
    if report is not None:
        lane.readiness = report
        events.append(ReadinessReported.of("prepare", report))
    lane.apply(events)
    log.info(
        "%s: prepared %s level %d, %d frames at %g fps (%g s), camera %s (%dx%d), video %s",
        lane.label,
        request.Task,
        request.Level,
        frames,
        request.Fps,
        request.Duration,
        source.display,
        info.width,
        info.height,
        ctx.media.relative(video),
    )
    return lane


class ExerciseLane(Lane):
    def __init__(
        self,
        ctx: LaneContext,
        capture_id: int,
        session: Session,
        source: CameraSource,
        video: Path,
    ) -> None:
        super().__init__(ctx, capture_id, session)
        self.source = source
        self.video = video
        self.fps = session.prepared.fps if session.prepared else 20.0
        self.stats = LaneStats()
        self._frames_scope: anyio.CancelScope | None = None
        self._recorder: VideoRecorder | PacketRecorder | None = None
        self._assessment_over = False
        self._camera_failed = False  # the camera stage raised: its error ends the session
        # Held while the remuxed recording is written (camera worker thread) or salvaged.
        self._record_lock = threading.Lock()
        self._last_pts = 0.0  # presentation time of the last assessed frame
        self._evidence: Evidence | None = None

    # -- the lane template's hooks --------------------------------------------------------

    async def before_start_reply(self) -> None:
        # The operator may have waited minutes since the prepare: look at the camera again, so
        # the start's readiness is what the camera sees now. A camera that cannot be read here
        # keeps the prepare's report (the test itself then reports the loss, -4).
        if self.readiness is None or self.session.prepared is None:
            return
        try:
            probe = await probe_camera(self.ctx, self.source, keep=READINESS_FRAMES)
        except RequestError as error:  # the camera is not readable right now
            log.warning("%s: camera not read for the start's readiness: %s", self.label, error)
            return
        prepared = self.session.prepared
        report = await look(self.ctx, self.key, probe.images, prepared.level, self.session.task)
        if report is not None:
            self.readiness = report

    def on_start(self, request: Request | None, reply: Reply) -> None:
        if self.readiness is not None:
            self.apply([ReadinessReported.of("start", self.readiness)])
        log.info("%s: started", self.label)
        reply(**self.readiness_fields())

    def interrupt_work(self) -> None:
        # Only the wait for the next frame is cancelled: the recording is closed normally,
        # so every assessed frame is in the video.
        if self._frames_scope is not None:
            self._frames_scope.cancel()

    async def seal_evidence(self) -> Evidence | None:
        return self._evidence or await self._salvage_recording()

    def failure(self, error: Exception) -> tuple[EndStatus, str]:
        error = _video_exists(error) or error  # from a stage, it comes in an ExceptionGroup
        if isinstance(error, VideoExistsError):
            # Not a fault of this server: a second server sharing the media root took the
            # same ModelPath after this prepare. Say so, and leave that file alone.
            name = self.ctx.media.relative(error.path)
            log.error("%s: %s", self.label, error)
            return EndStatus.INTERNAL_ERROR, (
                f"ModelPath {name} was created by another lane after the prepare (another "
                "server on this media root?); this test was not recorded and that file was "
                "left as it is"
            )
        return super().failure(error)

    def release(self) -> None:
        self.ctx.pose.forget(self.key)

    def figures(self) -> dict[str, float | int | str]:
        return self.stats.snapshot()

    async def _salvage_recording(self) -> Evidence | None:
        """After an error: close what was written and hash it (fragments stay decodable)."""
        if self._recorder is None:
            return None

        def salvage() -> Evidence | None:
            with self._record_lock:  # a camera thread left behind may be writing
                recorder, self._recorder = self._recorder, None
            if recorder is None:
                return None
            recorder.abort()
            if not recorder.path.is_file():
                return None
            return Evidence(
                file_sha256(recorder.path), recorder.path.stat().st_size, recorder.frames
            )

        return await anyio.to_thread.run_sync(salvage, limiter=self.ctx.work_limiter)

    async def work(self) -> None:
        frames_tx, frames_rx = anyio.create_memory_object_stream[CameraFrame | SourceLost](
            FRAME_QUEUE
        )
        record_tx, record_rx = anyio.create_memory_object_stream[CameraFrame](RECORD_QUEUE)
        self.stats.started_at = time.monotonic()
        async with anyio.create_task_group() as tg:
            camera_scope = anyio.CancelScope()
            tg.start_soon(self._camera_stage, frames_tx, camera_scope)
            tg.start_soon(self._record_stage, record_rx)
            async with record_tx, frames_rx:
                try:
                    await self._assess_stage(frames_rx, record_tx)
                finally:
                    self.stats.ended_at = time.monotonic()
            # The camera stage now records the tail (remuxed recordings) and ends; a camera
            # that hangs meanwhile is not waited for.
            self._assessment_over = True
            camera_scope.deadline = anyio.current_time() + TAIL_S + self.ctx.settings.camera_grace_s

    # -- stages ---------------------------------------------------------------------------

    async def _assess_stage(
        self,
        frames: ObjectReceiveStream[CameraFrame | SourceLost],
        record: ObjectSendStream[CameraFrame],
    ) -> None:
        with anyio.CancelScope() as self._frames_scope:
            if self.phase is not Phase.ACTIVE:
                return
            async for item in frames:
                if isinstance(item, SourceLost):
                    self.apply(self._source_lost(item.message))
                    return
                # A frame being assessed is finished even when stop arrives meanwhile, so
                # every recorded frame is an assessed one and vice versa.
                with anyio.CancelScope(shield=True):
                    await self._assess(item, record)
                if self.session_over:
                    return
            if not self._camera_failed:  # else its error ends the session, as what it is
                self.apply(self._source_lost("the camera stage ended unexpectedly"))

    async def _assess(self, item: CameraFrame, record: ObjectSendStream[CameraFrame]) -> None:
        tracked = await self.ctx.pose.track(self.key, item.image)
        self.stats.cpu_s["pose"] += tracked.cpu_s
        cpu_start = time.thread_time()
        estimate = tracked.estimate
        pose = (
            None
            if estimate is None
            else Pose(landmarks=estimate.landmarks, world=estimate.world, score=estimate.score)
        )
        events = self.session.observe(FrameObserved.of(item.index, pose, pts=item.pts))
        if tracked.examinee is not None:  # who the keypoints are of changed: record it first
            height, width = item.image.shape[:2]
            events = [tracked.examinee.as_event(item.index, width, height), *events]
        if not item.remuxed:  # encoded recordings hold exactly the assessed frames
            await record.send(item)
        self._last_pts = item.pts
        self.stats.assessed += 1
        self.stats.latency_s.append(time.monotonic() - item.captured_at)
        self.apply(events)
        self.stats.cpu_s["rules"] += time.thread_time() - cpu_start

    def _source_lost(self, message: str) -> list[Event]:
        log.warning("%s: video source lost: %s", self.label, message)
        return self.session.fail(
            SourceFailed(
                frame=self.session.progress.frames,
                status=int(EndStatus.SOURCE_LOST),
                message=message,
            )
        )

    async def _camera_stage(
        self, frames: MemoryObjectSendStream[CameraFrame | SourceLost], scope: anyio.CancelScope
    ) -> None:
        grace = self.ctx.settings.camera_grace_s
        camera = open_camera(self.source, timeout_s=grace, decode=self.ctx.decode)
        with scope:
            async with frames:
                try:
                    try:
                        lost = await self._read_frames(camera, frames, grace)
                        await frames.send(SourceLost(lost))
                    except anyio.BrokenResourceError:
                        # The assessment ended (stop, time up) while this stage waited for
                        # room in the queue: nothing to report.
                        pass
                    except Exception:
                        # Told before `frames` closes, so that the assessment does not report
                        # a lost camera: the error (the recording's, a bug) is the end.
                        self._camera_failed = True
                        raise
                    if isinstance(self._recorder, PacketRecorder):
                        await self._record_tail(camera)
                finally:
                    with anyio.move_on_after(1.0, shield=True):
                        await anyio.to_thread.run_sync(camera.close, abandon_on_cancel=True)

    async def _record_tail(self, camera: CameraReader) -> None:
        """The camera's packets up to TAIL_S past the last assessed frame (the seed system
        recorded 2 s beyond the end), so every frame up to the last assessed one is
        complete (B-frames included); then the recording is closed and hashed."""
        until = self._last_pts + TAIL_S

        def finish() -> Evidence | None:
            self._mux(camera.tail(until), camera.stream)
            with self._record_lock:
                recorder, self._recorder = self._recorder, None
                return recorder.close() if recorder is not None else None

        self._evidence = await anyio.to_thread.run_sync(
            finish, abandon_on_cancel=True, limiter=self.ctx.camera_limiter
        )

    def _mux(
        self, packets: tuple[av.Packet, ...], stream: av.video.stream.VideoStream | None
    ) -> None:
        """Write camera packets to the remuxed recording, in the camera's worker thread: as
        they are demuxed, with no hop through the event loop (muxing costs next to nothing)."""
        if not packets:
            return
        started = time.thread_time()
        try:
            with self._record_lock:
                recorder = self._recorder
                if recorder is None:
                    if stream is None:
                        raise RecordingError(f"no codec description for {self.video}")
                    recorder = PacketRecorder(self.video, stream)
                    recorder.open()
                    self._recorder = recorder
                if isinstance(recorder, PacketRecorder):
                    recorder.write(packets)
        finally:
            self.stats.cpu_s["record"] += time.thread_time() - started

    async def _read_frames(
        self,
        camera: CameraReader,
        frames: MemoryObjectSendStream[CameraFrame | SourceLost],
        grace: float,
    ) -> str:
        """Send assessed frames until the source fails; returns why it failed."""
        limiter = self.ctx.camera_limiter
        display = self.source.display
        # Measured from "now + allowance": the first frame may come late without being lost.
        last_frame_at = time.monotonic() + FIRST_FRAME_ALLOWANCE_S
        try:
            with anyio.fail_after(grace + FIRST_FRAME_ALLOWANCE_S):
                await anyio.to_thread.run_sync(camera.open, abandon_on_cancel=True, limiter=limiter)
        except (CameraError, TimeoutError) as error:
            return f"cannot reopen camera {display}: {error or 'timed out'}"
        k = 0
        origin: float | None = None  # monotonic time of the camera's timestamp 0 (files)
        last_reopen = time.monotonic()

        def read() -> tuple[CapturedFrame, Image | None, int] | None:
            """The next camera frame, its picture for the models (None when no lane frame is
            assessed on it) and the end of the assessed frames it stands for."""
            started = time.thread_time()
            try:
                frame = camera.read(lazy=True)
                if frame is None:
                    return None
                # read with every frame: the camera settles it at its first picture, and a
                # reopened camera whose GPU failed meanwhile decodes on the CPU
                self.stats.decoder = camera.decoder
                end = assessed_until(k, self.fps, frame.timestamp)
                image = None
                if end > k:  # converted here, in the worker thread, only when assessed
                    image = frame.for_pose() if frame.pts is not None else frame.convert()
            finally:
                self.stats.cpu_s["decode"] += time.thread_time() - started
            if frame.pts is not None:  # remuxed: every packet, now
                self._mux(frame.packets, camera.stream)
            return frame, image, end

        while True:
            remaining = grace - (time.monotonic() - last_frame_at)
            if remaining <= 0:
                if k == 0:
                    waited = grace + FIRST_FRAME_ALLOWANCE_S
                    return f"camera {display} delivered no frame within {waited:g} s of start"
                return f"camera {display} delivered no frame for {grace:g} s"
            read_frame = None
            with anyio.move_on_after(remaining) as waiting:
                read_frame = await anyio.to_thread.run_sync(
                    read, abandon_on_cancel=True, limiter=limiter
                )
            if read_frame is None:
                if not self.source.live and not waiting.cancelled_caught:
                    return self._file_ended(k)  # a file's end: no camera to wait for
                now = time.monotonic()
                if self.source.live and now - last_reopen >= REOPEN_S:
                    last_reopen = now
                    await self._reopen(camera)
                else:
                    await anyio.sleep(min(RETRY_S, max(0.0, remaining)))
                continue
            frame, image, end = read_frame
            last_frame_at = time.monotonic()
            # A file is paced here, on the loop, so that the pacing is not the camera's silence
            # (the grace). Tried and left out: the read's worker thread pacing the file itself
            # and reading on to the next assessed frame in the same hop (a 25 fps camera
            # assessed at 20: one hop and no timer per assessed frame, against 1.25 of each).
            # On a 2-core Xeon VM (2026-12-06, 7 lanes of 360p, 3 alternated pairs) the event
            # loop's CPU was 0.45-0.54 ms a frame against 0.50-0.69, and the other threads'
            # 0.71-0.75 against 0.70-0.87: within the runs' spread.
            if not self.source.live:  # play a file at its own rate, as a camera would
                if origin is None:
                    origin = last_frame_at - frame.timestamp
                delay = origin + frame.timestamp - time.monotonic()
                if delay > 0:
                    await anyio.sleep(delay)
            if self._assessment_over:
                return "the assessment ended"  # not reported: nobody reads it any more
            captured_at = time.monotonic()
            while k < end:
                assert image is not None  # converted whenever end > k
                # Encoded recordings hold the assessed frames, frame k at k / Fps.
                remuxed = frame.pts is not None
                pts = frame.pts if frame.pts is not None else k / self.fps
                await frames.send(CameraFrame(k, image, captured_at, pts, remuxed))
                self.stats.backlog = frames.statistics().current_buffer_used
                k += 1
            # The grace is the camera's silence. The time spent here pacing a file or waiting for
            # room in a full queue (a lane slower than its camera: an overloaded server) is not
            # the camera's, and counting it ended such lanes with -4 "delivered no frame".
            last_frame_at = time.monotonic()

    def _file_ended(self, frames: int) -> str:
        budget = self.session.prepared.frames if self.session.prepared else frames
        path = self.source.path
        name = self.ctx.media.relative(path) if path is not None else self.source.display
        return (
            f"video file {name} ended after {frames / self.fps:.1f} s ({frames} of {budget} frames)"
        )

    async def _reopen(self, camera: CameraReader) -> None:
        try:
            await anyio.to_thread.run_sync(
                camera.reopen, abandon_on_cancel=True, limiter=self.ctx.camera_limiter
            )
            log.info("%s: camera %s reopened", self.label, self.source.display)
        except CameraError as error:
            log.debug("%s: reopening the camera failed: %s", self.label, error)

    async def _record_stage(self, frames: ObjectReceiveStream[CameraFrame]) -> None:
        """The encoded recording (sources without a remuxable codec): the assessed frames."""
        limiter = self.ctx.work_limiter
        recorder: VideoRecorder | None = None
        async with frames:
            async for item in frames:
                if recorder is None:
                    height, width = item.image.shape[:2]
                    recorder = VideoRecorder(self.video, self.fps, width, height)
                    await anyio.to_thread.run_sync(recorder.open, limiter=limiter)
                    self._recorder = recorder
                await anyio.to_thread.run_sync(self._encode, recorder, item, limiter=limiter)
        if recorder is not None and self._recorder is recorder:
            self._recorder = None
            self._evidence = await anyio.to_thread.run_sync(recorder.close, limiter=limiter)

    def _encode(self, recorder: VideoRecorder, item: CameraFrame) -> None:
        started = time.thread_time()
        try:
            # Encoded recordings are fed the BGR images their frames were assessed on.
            assert isinstance(item.image, np.ndarray)
            recorder.write(item.index, item.image)
        finally:
            self.stats.cpu_s["record"] += time.thread_time() - started
