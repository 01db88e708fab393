"""The engine as a library: a `Site` runs lanes inside the caller's own asyncio/AnyIO loop.

    async with khfsm.Site(database_url="sqlite:///khfsm.sqlite", media_root="media") as site:
        lane = await site.prepare(
            "pushup", camera="rtsp://cam-2/stream", level=5, duration=122, fps=20,
            video="video/candidate-17.mp4",
        )
        await lane.start()
        async for push in lane.progress():  # every counted rep, then the final push
            print(push.status, push.count, push.total, push.message)

`khfsm serve` is this API behind a WebSocket adapter (`khfsm.server.app`): the lanes, the
store, the pose service and the recording are the same objects either way. A `Site` owns
one task group; open it with `async with` in the task that uses it. Leaving the block ends
every unfinished lane with status −6 (server shutting down) and makes its events durable
first.

Every refusal (a lane that is already running, a path outside the media root, a camera that
does not answer) raises `RequestError` whose message says what to fix.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, TypeVar

import anyio
import cv2
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

import khfsm
from khfsm.domain.errors import DomainError
from khfsm.domain.face import FACE_CHECK
from khfsm.domain.machine import State
from khfsm.domain.readiness import ReadinessReport
from khfsm.registry import get_task, installed_tasks
from khfsm.server import protocol
from khfsm.server.context import EventSink, FaceLoader, LaneContext, blocking_threads
from khfsm.server.decoding import DecodePlan, choose_decoder, share_primary_context_with_ffmpeg
from khfsm.server.lane import Lane
from khfsm.server.lanes import LaneKind, LaneRegistry
from khfsm.server.monitor import LoopMonitor
from khfsm.server.paths import MediaRoot, PathRefused
from khfsm.server.protocol import ExercisePrepare, FacePrepare, Request, RequestError
from khfsm.server.push import Push
from khfsm.server.sources import use_ffmpeg_capture_options
from khfsm.settings import Settings

if TYPE_CHECKING:
    from khfsm.review.webhook import ResultWebhook
    from khfsm.store.sql import SqlRecorder
    from khfsm.store.writer import EventWriter
    from khfsm.vision.batching import PoseService

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_S = 15.0
# The spool keeps every event safe on disk each 100 ms tick; the database is written every
# half second, in transactions five times larger. Most of a transaction is fixed cost
# (BEGIN, the summary row's read and update, the previous hash, COMMIT, the hop to the
# writer's thread), all of it in the one process every lane shares: measured on SQLite, a
# lane's appends took 4.3-5.3 ms of CPU per second at 2 frames each (100 ms), 1.3-1.7 ms
# at 10 (500 ms). The live board follows the lanes, not the database; a flush (a session's
# end) still writes at once.
DATABASE_DELAY_MS = 500.0


def served_kinds() -> dict[str, LaneKind]:
    """Task -> its kind of lane, for the newest release of every installed task."""
    from khfsm.server.kinds import lane_kinds

    return lane_kinds({name: get_task(name) for name in installed_tasks()})


class Site:
    """The lanes of one site, with their store, media root and models.

    `settings` as given, else built from `overrides` (keyword arguments named like the
    `Settings` fields, e.g. ``database_url=``, ``media_root=``) over ``KHFSM_*`` variables.
    No config file is read unless the caller does (`khfsm.settings.load_settings`)."""

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        if settings is not None and overrides:
            raise TypeError("pass either settings or keyword overrides, not both")
        self.settings = settings if settings is not None else Settings(**overrides)
        self.media = MediaRoot.at(self.settings.resolved_media_root)
        self.monitor = LoopMonitor()
        self.provider = ""  # the ONNX Runtime execution provider, once open
        self.decode = DecodePlan(None, "not open yet")  # where cameras are decoded
        self._stack: AsyncExitStack | None = None
        self._registry: LaneRegistry | None = None
        self._recorder: SqlRecorder | None = None
        self._writer: EventWriter | None = None
        self._pose: PoseService | None = None
        self.webhook: ResultWebhook | None = None  # with `webhook_url`: results posted on end
        self.failure: str | None = None  # why a core task died, once one has
        self._failure_callbacks: list[Callable[[str], None]] = []
        self._closing = False

    # -- what the WebSocket adapter and /healthz read -------------------------------------------

    @property
    def registry(self) -> LaneRegistry:
        return _opened(self._registry)

    @property
    def recorder(self) -> SqlRecorder:
        return _opened(self._recorder)

    @property
    def writer(self) -> EventWriter:
        return _opened(self._writer)

    @property
    def pose(self) -> PoseService:
        return _opened(self._pose)

    @property
    def database(self) -> str:
        """The store's URL with any password masked."""
        from khfsm.store.urls import redact_database_url

        return redact_database_url(self.settings.resolved_database_url)

    # -- opening and closing --------------------------------------------------------------------

    async def __aenter__(self) -> Site:
        from khfsm.store.engine import StoreTimeouts
        from khfsm.store.migrate import open_store_on_start
        from khfsm.store.ownership import claim_sqlite_store, sqlite_file
        from khfsm.store.recovery import recover
        from khfsm.store.spool import Spool
        from khfsm.store.urls import is_sqlite, parse_url
        from khfsm.store.writer import EventWriter
        from khfsm.vision.batching import PoseService, inference_plan
        from khfsm.vision.pose import load_pose_models

        settings = self.settings
        lane_kinds = served_kinds()
        use_ffmpeg_capture_options(settings.ffmpeg_capture_options)
        self.media.root.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_database_url
        parsed = parse_url(url)
        sqlite = is_sqlite(parsed)
        server_lock: IO[bytes] | None = None
        database_file = sqlite_file(url)
        if database_file is not None:
            database_file.parent.mkdir(parents=True, exist_ok=True)
            # Before the recovery below ends every session stored open: not another server's.
            server_lock = claim_sqlite_store(database_file)
        # SQLite is embedded: the site brings it to the current schema. An empty PostgreSQL
        # database gets its schema on the first start; later ones are upgraded on purpose
        # (`khfsm db upgrade`). See `khfsm.store.migrate.upgrade_on_start`.
        timeouts = StoreTimeouts(
            connect_s=settings.db_connect_timeout_s,
            statement_s=settings.db_statement_timeout_s,
            busy_ms=settings.db_busy_timeout_ms,
        )
        try:
            recorder = await anyio.to_thread.run_sync(lambda: open_store_on_start(url, timeouts))
        except BaseException:
            if server_lock is not None:
                server_lock.close()
            raise
        async with AsyncExitStack() as stack:
            if server_lock is not None:
                stack.callback(server_lock.close)  # the last to go, after the store closes
            stack.callback(recorder.close)
            spool = Spool(settings.resolved_spool_dir, self.database)
            await anyio.to_thread.run_sync(spool.open)
            stack.callback(spool.close)
            # Before any lane: what a crash left in the spool reaches the store, and the
            # sessions it left open are ended (-7), so that no lane reuses a half state.
            await anyio.to_thread.run_sync(
                lambda: recover(recorder, spool, every_open_session=sqlite)
            )
            if settings.decoder == "cuda":
                # Before any ONNX Runtime session makes the GPU's context with other flags
                # (khfsm.server.decoding: FFmpeg shares it only with its own).
                why_not = await anyio.to_thread.run_sync(share_primary_context_with_ffmpeg)
                if why_not is not None:
                    log.info("the GPU's context was left as it is: %s", why_not)
            models = await anyio.to_thread.run_sync(
                load_pose_models,
                settings.inference_threads,
                settings.providers,
                settings.models_dir,
            )
            writer = EventWriter(
                recorder,
                spool=spool,
                database_delay_ms=DATABASE_DELAY_MS,
                # SQLite answers within its busy timeout; a network database may not answer.
                write_timeout_s=None if sqlite else timeouts.answer_s,
            )
            plan = inference_plan(
                models.on_gpu,
                settings.inference_workers,
                settings.max_batch,
                crop_threads=settings.crop_threads,
                max_wait_ms=settings.max_wait_ms,
            )
            pose = PoseService(
                models,
                max_batch=plan.max_batch,
                max_wait_ms=plan.max_wait_ms,
                workers=plan.workers,
                crop_threads=plan.crop_threads,
                batch_after_ms=plan.batch_after_ms,
            )
            # OpenCV splits each crop over its pool, one thread per core by default in every
            # process: 8 servers on 16 cores ran 128 threads, and a fifth of their CPU went to
            # the pools (README, "More lanes than one process carries"). As many as the
            # batches that run at once keep what a 2-core server gained from two.
            cv2.setNumThreads(settings.opencv_threads or plan.workers)
            # Each batch shape once before the first lane (a GPU plans each on first use).
            await anyio.to_thread.run_sync(pose.warm_up)
            self.decode = await anyio.to_thread.run_sync(
                choose_decoder, settings.decoder, models.on_gpu
            )
            task_group = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(task_group.cancel_scope.cancel)  # runs before the group's exit
            for name, run in (
                ("event writer", writer.run),
                ("event spool", writer.run_spool),
                ("pose service", pose.run),
                ("loop monitor", self.monitor.run),
            ):
                task_group.start_soon(self._core_task, name, run, name=name)
            if settings.webhook_url:
                self.webhook = _result_webhook(settings)
                task_group.start_soon(self.webhook.run, name="result webhook")
            self._registry = LaneRegistry(self._lane_context(task_group, pose, writer), lane_kinds)
            self._recorder, self._writer, self._pose = recorder, writer, pose
            self.provider = models.detector.get_providers()[0]
            self._stack = stack.pop_all()
        log.info(
            "khfsm %s ready: store %s, media root %s, inference on %s "
            "(%d batches at once, up to %d frames each, cropped in %d %s), "
            "cameras decoded on %s (%s)",
            khfsm.__version__,
            self.database,
            self.media.root,
            self.provider,
            self.pose.workers,
            self.pose.max_batch,
            self.pose.crop_threads,
            "thread" if self.pose.crop_threads == 1 else "threads",
            self.decode.name,
            self.decode.reason,
        )
        return self

    async def _core_task(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run one of the site's core tasks; its death is the site's failure.

        Without its writer, pose service or monitor the site only looks alive: lanes would
        be acked and never stored or assessed. So a core task that raises or returns is
        recorded (`failure`, reported by /healthz as 503) and the callbacks registered with
        `on_failure` are told, so that the server stops and its supervisor restarts it. The
        other tasks carry on meanwhile: the lanes still end in order and are stored."""
        try:
            await run()
        except Exception as error:
            # An I/O error (a disk) says all in its message; anything else is a bug: trace it.
            trace = None if isinstance(error, OSError) else error
            self._fail(f"the {name} died: {type(error).__name__}: {error}", trace)
            return
        if not self._closing:
            self._fail(f"the {name} stopped unexpectedly", None)

    def _fail(self, reason: str, error: BaseException | None) -> None:
        if self.failure is not None:
            log.error("also: %s", reason, exc_info=error)
            return
        self.failure = reason
        log.critical("%s; the server must be restarted", reason, exc_info=error)
        for callback in self._failure_callbacks:
            try:
                callback(reason)
            except Exception:
                log.exception("a failure callback failed")

    def on_failure(self, callback: Callable[[str], None]) -> None:
        """Call `callback(reason)` once when a core task of the site dies (see `failure`)."""
        self._failure_callbacks.append(callback)
        if self.failure is not None:
            callback(self.failure)

    def _lane_context(
        self, task_group: TaskGroup, pose: PoseService, writer: EventWriter
    ) -> LaneContext:
        from khfsm.vision.manifest import face_model_hashes, pose_model_hashes

        settings = self.settings
        directory = settings.models_dir
        sink: EventSink = writer
        if self.webhook is not None:
            from khfsm.review.webhook import ResultSink

            sink = ResultSink(
                writer,
                self.webhook,
                public_url=settings.public_url,
                evidence_url=settings.evidence_url,
            )
        return LaneContext(
            settings=settings,
            media=self.media,
            writer=sink,
            pose=pose,
            task_group=task_group,
            face=FaceLoader(settings.inference_threads, settings.providers, directory),
            pose_models=pose_model_hashes(directory),
            face_models=face_model_hashes(directory),
            decode=self.decode,
            camera_limiter=anyio.CapacityLimiter(blocking_threads(settings)),
            work_limiter=anyio.CapacityLimiter(blocking_threads(settings)),
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        if stack is None:
            return None
        self._closing = True
        try:
            with anyio.CancelScope(shield=True):
                await self.registry.shutdown(SHUTDOWN_WAIT_S)
        finally:
            await stack.__aexit__(exc_type, exc, traceback)
        return None

    # -- lanes ----------------------------------------------------------------------------------

    async def prepare(
        self,
        task: str,
        *,
        camera: str | int,
        video: str | Path,
        duration: float,
        fps: float = 20.0,
        level: int = 5,
        capture_id: int = 0,
    ) -> LaneHandle:
        """Prepare an exercise test: the camera is opened once to check it, `video` (under
        the media root, not existing yet) is where the evidence will be recorded."""
        request = _validated(
            ExercisePrepare,
            Task=task,
            Op=protocol.Operation.PREPARE,
            CaptureID=capture_id,
            CapturePath=camera,
            ModelPath=str(video),
            Duration=duration,
            Fps=fps,
            Level=level,
        )
        return await self._prepare(request)

    async def prepare_face_check(
        self, *, camera: str | int, enrolled: str | Path, capture_id: int = 0
    ) -> LaneHandle:
        """Prepare a face check: is the person in `camera` (a photo under the media root or
        a stream) the one whose vector `enrolled` holds (`khfsm face enroll`)?"""
        request = _validated(
            FacePrepare,
            Task=FACE_CHECK.task,
            Op=protocol.Operation.PREPARE,
            CaptureID=capture_id,
            CapturePath=camera,
            ModelPath=str(enrolled),
        )
        return await self._prepare(request)

    async def _prepare(self, request: Request) -> LaneHandle:
        try:
            lane = await self.registry.prepare(request)
        except (DomainError, PathRefused) as error:
            raise RequestError(str(error)) from error
        return LaneHandle(self.registry, lane)

    def lanes(self) -> list[LaneHandle]:
        """Every lane's current (or last) session."""
        registry = self.registry
        return [LaneHandle(registry, lane) for lane in registry.lanes.values()]


class LaneHandle:
    """One prepared session of one lane, as an embedding application drives it."""

    def __init__(self, registry: LaneRegistry, lane: Lane) -> None:
        self._registry = registry
        self._lane = lane

    @property
    def task(self) -> str:
        return self._lane.task_name

    @property
    def capture_id(self) -> int:
        return self._lane.capture_id

    @property
    def session_id(self) -> str:
        return self._lane.session_id

    @property
    def state(self) -> State:
        return self._lane.session.state

    def status(self) -> Push:
        """The progress so far (the final push once the session has finished)."""
        return self._lane.status()

    @property
    def readiness(self) -> ReadinessReport | None:
        """What the camera saw at prepare (reported again at start): whether a person is in
        view, which body parts are not, the start position, the camera view. None for a task
        that reports none (the face check). It never refuses a start: the caller decides."""
        return self._lane.readiness

    async def start(self, duration: float | None = None) -> Mapping[str, Any]:
        """Start the test. An exercise returns at once, with `readiness` (the ack's object;
        `LaneHandle.readiness` is the typed report); a face check returns once it has an
        outcome, with the saved crop's `filename` (relative to the media root).
        `duration` is the face check's time limit in seconds (default 10)."""
        lane = self._lane
        fields: dict[str, Any] = {
            "Task": lane.task_name,
            "Op": protocol.Operation.START,
            "CaptureID": lane.capture_id,
        }
        if duration is not None:
            fields["Duration"] = duration
        request = _validated(self._registry.kind(lane.task_name).start_request, **fields)
        answer = _Answer()
        await self._registry.start(lane.key, request, answer)
        return await answer.wait()

    async def stop(self) -> Push:
        """Stop the test (idempotent); returns the final push once it has been stored."""
        answer = _Answer()
        await self._registry.stop(self._lane.key, answer)
        await answer.wait()
        return await self.result()

    async def result(self) -> Push:
        """Wait for the session's end; its final push."""
        await self._lane.finished()
        final = self._lane.final_push
        if final is None:  # pragma: no cover - only if finishing itself failed (logged)
            raise RequestError(f"{self._lane.who} ended without a result; see the log")
        return final

    async def progress(self) -> AsyncIterator[Push]:
        """Every push from now on (counted reps), ending with the final push."""
        # Unbounded: a lane never waits for a reader, and a session pushes once per rep.
        send, receive = anyio.create_memory_object_stream[Push](math.inf)
        listener = _StreamListener(send)
        lane = self._lane
        lane.subscribe(listener)
        try:
            if lane.final_push is not None:
                yield lane.final_push
                return
            async with receive:
                async for push in receive:
                    yield push
                    if push.final:
                        return
        finally:
            lane.unsubscribe(listener.id)
            send.close()


class _StreamListener:
    def __init__(self, send: MemoryObjectSendStream[Push]) -> None:
        self._send = send

    @property
    def id(self) -> int:
        return id(self)

    def __call__(self, push: Push) -> None:
        # A reader that has gone away must never make the lane fail.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._send.send_nowait(push)


class _Answer:
    """The one answer to a request a lane makes through its reply callback."""

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._error = ""
        self._extra: dict[str, Any] = {}

    def __call__(self, error: str = "", **extra: Any) -> None:
        if self._event.is_set():
            return
        self._error, self._extra = error, extra
        self._event.set()

    async def wait(self) -> Mapping[str, Any]:
        await self._event.wait()
        if self._error:
            raise RequestError(self._error)
        return self._extra


def _validated(model: type[Request], **fields: Any) -> Request:
    return protocol.validate(model, fields)


def _result_webhook(settings: Settings) -> ResultWebhook:
    from khfsm.review.webhook import ResultWebhook, WebhookPolicy

    assert settings.webhook_url
    policy = WebhookPolicy(
        timeout_s=settings.webhook_timeout_s,
        max_queue=settings.webhook_max_queue,
        max_attempts=settings.webhook_max_attempts,
    )
    return ResultWebhook(settings.webhook_url, policy)


T = TypeVar("T")


def _opened(value: T | None) -> T:
    if value is None:
        raise RuntimeError("the site is not open; use it as `async with Site(...) as site`")
    return value
