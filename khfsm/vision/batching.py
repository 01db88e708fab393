"""PoseService: one inference queue for the frames of every lane.

Frames from all lanes are gathered into batches of up to `max_batch` (waiting at most
`max_wait_ms` after the first frame of a batch) and run through `pose.estimate_batch` in worker
threads, so the event loop never blocks on ONNX Runtime. The service keeps each lane's tracking
state (ROI and examinee), exactly as a PoseTracker would.

Ordering: a batch holds at most one frame per lane, and a lane's next frame is not scheduled
until its previous one has finished, because it is cropped with the ROI that frame produced.
Results therefore come back to each lane in the order its frames were submitted, and each
lane sees the same keypoints as a PoseTracker fed the same frames (batching is exact on CPU:
the dynamic-batch models compute every sample independently; tests/vision/test_batching.py
checks bit equality).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import anyio
import anyio.from_thread
import anyio.to_thread

from khfsm.errors import KhfsmError
from khfsm.vision.batchrun import BatchRunner, model_seconds, warm_up
from khfsm.vision.fanout import helper_cpu_s
from khfsm.vision.picture import Image
from khfsm.vision.pose import PoseEstimate, PoseModels, PoseStep, Track, check_frame, estimate_batch

# On a GPU a batch costs far less than its frames one by one, and two batches in flight keep
# it busy while the next is gathered. Measured once on an H200 (benchmarks/bench_pose.py
# --providers cuda, 720p, one process): 174 frames/s one frame at a time, 467-588 in batches
# of 8, 378-491 of 16, 526-661 of 64, with 1 to 4 batches in flight; the servers' batches
# held 3.5 frames on average at 32 lanes over 8 servers and 14 at 128 (bench_server.py), so
# 16 is about what the lanes of one server fill. Neither figure was tuned further.
GPU_BATCH = 16
GPU_WORKERS = 2
# A GPU batch's crops, this many at once (khfsm.vision.fanout): OpenCV releases the GIL, so a
# batch of 16 need not wait for 16 crops one after the other. Not yet measured on a GPU; on
# 2 cores (a batch of 16 tracking frames, the models' outputs replayed, so only the work
# around them is timed: bench_pose.py, section 4) 2 threads were 1.04 to 1.6 times as fast as
# one, depending on the moment. Four: about a quarter of a 16-core machine's cores, shared by
# the batches in flight; a guess until a GPU machine measures it (KHFSM_CROP_THREADS).
GPU_CROP_THREADS = 4


# On CPU a batch runs in one intra-op thread, and a batch of frames costs less than the frames
# one by one once it holds more than one (ONNX Runtime's convolutions amortise their set-up and
# use the core better; the outputs are bit for bit the same): on a 2-core EPYC, 720p tracking
# frames, two workers, 169 frames/s one frame a batch, 178 two, 187 four, 182 eight
# (benchmarks/bench_pose.py, settled frames). A server at 7 lanes of 720p (bench_server.py,
# alternated runs) assessed 115 and 110 frames/s with one frame a batch, 122 and 126 with up
# to two, 127 and 117 with up to four; two: as much as four, with batches half as long.
# A CPU batch never waits for frames (`CPU_MAX_WAIT_MS`): it takes those already waiting.
# And it takes more than one only once the lanes are behind (`CPU_BATCH_AFTER_MS`): a batch
# of two takes about twice as long as one frame, and every lane in it waits for all of it,
# which a lane that keeps up need not. (Whether that shows in the p99 latency at a load the
# cores carry was not settled: this machine's runs differed more from one another.)
CPU_BATCH = 2
CPU_MAX_WAIT_MS = 0.0
GPU_MAX_WAIT_MS = 5.0
# Behind: the oldest frame waiting, once run, comes back more than one frame interval at 20 fps
# (the rate tablets ask for: the seed trace's Fps) after it was handed in, its wait so far plus
# what a frame's batch has taken on average: its lane can no longer keep 20 fps. (Its wait
# alone hardly ever reached 50 ms: a lane's next frame waits for its last, so frames of lanes
# that had fallen behind waited 32-44 ms on average, and batches stayed single.)
# Counting the age from the camera's delivery instead (a lane behind keeps its backlog in front
# of the service, where the hand-in does not see it) was tried on a 2-core EPYC (2026-12-06):
# at 7 lanes of 360p the batches held 1.4-1.9 frames on average against 1.1-1.9, but a frame's
# pose CPU in the server was 11.5-12.3 ms whatever the batches held, and 7 lanes kept up in 1
# of 4 alternated runs against 2 of 4: it added latency and saved nothing, so it was left out.
CPU_BATCH_AFTER_MS = 50.0


class InferencePlan(NamedTuple):
    workers: int  # batches in flight
    max_batch: int  # frames of different lanes per batch
    crop_threads: int  # a batch's crops at once
    max_wait_ms: float = GPU_MAX_WAIT_MS  # how long a batch waits to fill, after its first frame
    batch_after_ms: float = 0.0  # one frame a batch while the oldest waiting can be back by then


def inference_plan(
    on_gpu: bool,
    workers: int = 0,
    max_batch: int = 0,
    cores: int | None = None,
    crop_threads: int = 0,
    max_wait_ms: float | None = None,
) -> InferencePlan:
    """How the PoseService runs; 0 (None for the wait) means "choose for this machine".

    On CPU a batch runs on ONE core (one intra-op thread per run is the fastest use of a
    core: benchmarks/bench_pose.py), so the frames waiting are shared among the idle workers
    (`PoseService`): with workers=2 and max_batch=4 they once all went into one batch while
    the second core idled, and three 720p lanes fell to 15.5 fps each on 2 cores. So on CPU:
    a worker per core, and once the lanes are behind, batches of up to `CPU_BATCH` frames
    that were already waiting (see there). On a GPU: few workers, large batches that wait a
    little to fill, each cropped in a few threads (one frame needs no helpers).
    """
    cores = cores or os.cpu_count() or 1
    if workers <= 0:
        workers = GPU_WORKERS if on_gpu else cores
    if max_batch <= 0:
        max_batch = GPU_BATCH if on_gpu else CPU_BATCH
    if crop_threads <= 0:
        crop_threads = min(GPU_CROP_THREADS, cores, max_batch) if on_gpu else 1
    if max_wait_ms is None:
        max_wait_ms = GPU_MAX_WAIT_MS if on_gpu else CPU_MAX_WAIT_MS
    batch_after_ms = 0.0 if on_gpu else CPU_BATCH_AFTER_MS
    return InferencePlan(workers, max_batch, crop_threads, max_wait_ms, batch_after_ms)


@dataclass(eq=False, slots=True)
class _Job:
    lane: Hashable
    frame: Image
    done: anyio.Event = field(default_factory=anyio.Event)
    submitted: float = field(default_factory=time.perf_counter)
    result: PoseStep | None = None
    error: BaseException | None = None


class PoseServiceStopped(KhfsmError, RuntimeError):
    """The service's run() ended before the frame was processed."""


class PoseService:
    """Batches frames from all lanes: collects up to max_batch frames or waits max_wait_ms,
    runs detection/landmark models in worker threads, returns each result to the right lane,
    in order per lane. Never blocks the event loop.

    `workers` batches may be in flight at once, each in its own long-lived thread, which takes
    its next batch itself as soon as it has finished one: the event loop is not on that path.
    (It used to be: a worker's result went back to the loop, which released the slot, formed
    the next batch and handed it to a thread again, three turns of a loop busy with every
    lane. At 12 lanes of 720p on 2 cores the two workers idled 12 % of the time between
    batches while every lane had a frame waiting, and the process used 1.76 of its 2 cores.)
    Results go back to the lanes through one delivery thread, so a worker never waits for the
    loop either.

    A worker takes the frames already waiting, but no more than its share of them: as many
    as there are idle workers to take them (itself included), rounded up. So two workers on
    two cores each run one of two waiting frames at once instead of one running both while
    the other idles; a batch grows only when more frames wait than idle workers (the lanes
    are behind), which on CPU costs less per frame (`CPU_BATCH`); with `batch_after_ms` (on
    CPU) only once the oldest frame waiting can no longer be back that soon after it was
    handed in. Frames that arrive while a batch waits to fill (`max_wait_ms`, on a GPU) join
    it up to `max_batch`.
    """

    def __init__(
        self,
        models: PoseModels,
        max_batch: int = 4,
        max_wait_ms: float = GPU_MAX_WAIT_MS,
        workers: int = 1,
        crop_threads: int = 1,
        batch_after_ms: float = 0.0,
    ) -> None:
        if max_batch < 1 or workers < 1 or crop_threads < 1 or min(max_wait_ms, batch_after_ms) < 0:
            raise ValueError(
                "max_batch, workers and crop_threads must be >= 1, max_wait_ms and "
                "batch_after_ms >= 0"
            )
        self._models = models
        if models.on_gpu:  # few batch shapes for the CUDA kernels (khfsm.vision.batchrun)
            models.use_batching(max_batch)
        models.crop_in_threads(crop_threads)
        self.max_batch = max_batch
        self.crop_threads = crop_threads
        self._max_wait = max_wait_ms / 1000.0
        self._batch_after = batch_after_ms / 1000.0
        self.workers = workers
        # Shared by the event loop (submissions, forget) and the worker threads; held only
        # to move jobs and results, never during a batch, so the loop never waits long on it.
        self._condition = threading.Condition()
        self._stopping = False
        self._gathering = threading.Lock()  # held by the worker forming the next batch
        self._pending: deque[_Job] = deque()  # arrival order, across lanes
        self._busy: set[Hashable] = set()  # lanes with a frame in a batch
        self._running = 0  # batches taken by a worker and not yet released
        self._tracks: dict[Hashable, Track] = {}
        self._forgotten: set[Hashable] = set()  # busy lanes whose result must not be kept
        self.batches_run = 0
        self.frames_run = 0
        # Wall time from a batch's start in its worker thread to its results: how long each
        # lane in it waited on the models (a lane's next frame waits for its last). Split:
        # the models' runs (on a GPU, the GPU's share), and the CPU time of the rest and of
        # the runs; what is left of the wall time the batch waited for a core or the GIL.
        self.batch_seconds = 0.0
        self.model_seconds = 0.0
        self.batch_cpu_seconds = 0.0
        # Summed over frames: from a lane's submission to its batch's start (waiting for a
        # worker, for the batch to fill, for the lane's previous frame to come back).
        self.wait_seconds = 0.0

    def warm_up(self) -> list[int]:
        """On a GPU, run every batch shape of both models once (blocking: call it in a
        thread, before the first lane); the shapes run, none on CPU."""
        if not self._models.on_gpu:
            return []
        runners = [r for r in self._models.runners if isinstance(r, BatchRunner)]
        return sorted({shape for runner in runners for shape in warm_up(runner)})

    async def run(self) -> None:
        """Serve until cancelled (start it in the server's task group). On cancellation the
        batches in flight finish and are delivered; frames not yet taken up fail with
        PoseServiceStopped."""
        finished: queue.SimpleQueue[list[_Job] | None] = queue.SimpleQueue()
        # Their own limiter: these threads live as long as the service and must not hold
        # tokens of anyio's default pool, which the lanes' camera reads use.
        threads = anyio.CapacityLimiter(self.workers + 1)
        with self._condition:
            self._stopping = False
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(self.workers):
                    tg.start_soon(_in_thread, self._work, finished, threads)
                tg.start_soon(_in_thread, self._deliver_finished, finished, threads)
                try:
                    await anyio.sleep_forever()
                finally:  # cancelled: let the threads end (their tasks wait for them)
                    with self._condition:
                        self._stopping = True
                        self._condition.notify_all()
        finally:
            with self._condition:
                left = list(self._pending)
                self._pending.clear()
            for job in left:
                job.error = PoseServiceStopped("pose service stopped")
                job.done.set()

    async def estimate(self, lane: Hashable, frame: Image) -> PoseEstimate | None:
        """Pose in `frame` (BGR uint8 or a picture's planes) for `lane`; None when no person
        is found."""
        return (await self.track(lane, frame)).estimate

    async def track(self, lane: Hashable, frame: Image) -> PoseStep:
        """The lane's step for `frame`: the examinee's pose and any change of who is
        followed (`PoseStep.examinee`)."""
        check_frame(frame)  # here, so that one bad frame cannot fail a whole batch
        job = _Job(lane, frame)
        with self._condition:
            self._pending.append(job)
            self._condition.notify()
        try:
            await job.done.wait()
        except BaseException:
            # Cancelled: drop the frame if it has not been taken into a batch yet.
            with self._condition:
                if job in self._pending:
                    self._pending.remove(job)
            raise
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def forget(self, lane: Hashable) -> None:
        """Drop a lane's tracking state: its next frame runs the detector."""
        with self._condition:
            self._tracks.pop(lane, None)
            if lane in self._busy:
                self._forgotten.add(lane)

    def _work(self, finished: queue.SimpleQueue[list[_Job] | None]) -> None:
        """A worker thread: batch after batch until the service stops; each batch's jobs,
        answered, go to `finished`, and None when the thread ends."""
        try:
            while (batch := self._next_batch()) is not None:
                try:
                    self._process(batch)
                finally:  # answered even if something unexpected escaped
                    # Queued for delivery before its lanes may run again, so that a lane's
                    # next frame is delivered after this one.
                    finished.put(batch)
                    with self._condition:
                        self._release(batch)
        finally:
            finished.put(None)

    def _next_batch(self) -> list[_Job] | None:
        """Blocks until at least one frame is schedulable, then up to max_wait for more;
        None when the service stops first. One worker gathers at a time (the others wait for
        it), so frames that arrive while a batch fills join it rather than start another."""
        batch: list[_Job] = []
        with self._gathering, self._condition:
            while not self._stopping:
                self._take_into(batch, self._share())
                if batch:
                    break
                self._condition.wait()
            if not batch:
                return None
            self._running += 1
            deadline = time.perf_counter() + self._max_wait
            while len(batch) < self.max_batch and not self._stopping:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
                self._take_into(batch, self.max_batch)
        return batch

    def _share(self) -> int:
        """How many of the frames waiting now the gathering worker takes: one while the
        oldest would be back within batch_after_ms of its hand-in (its wait so far plus a
        frame's batch time on average), else its share among the idle workers (itself
        included), rounded up, at most max_batch; the condition's lock is held."""
        schedulable = [job for job in self._pending if job.lane not in self._busy]
        if not schedulable:
            return 1
        # pending is in arrival order: the first schedulable job has waited longest
        per_frame = self.batch_seconds / self.frames_run if self.frames_run else 0.0
        if time.perf_counter() - schedulable[0].submitted + per_frame < self._batch_after:
            return 1
        waiting = len({job.lane for job in schedulable})
        idle = max(1, self.workers - self._running)
        return max(1, min(self.max_batch, -(-waiting // idle)))

    def _take_into(self, batch: list[_Job], limit: int) -> None:
        """Move schedulable jobs (oldest first, one per idle lane) from pending into batch,
        until it holds `limit`; the condition's lock is held."""
        for job in list(self._pending):
            if len(batch) >= limit:
                return
            if job.lane in self._busy:
                continue
            self._pending.remove(job)
            self._busy.add(job.lane)
            batch.append(job)

    def _process(self, batch: list[_Job]) -> None:
        """Run one batch (in a worker thread) and record its results on its jobs and the
        lanes' tracking state."""
        frames = [job.frame for job in batch]
        with self._condition:
            tracks = [self._tracks.get(job.lane) for job in batch]
        try:
            steps, times = _timed_batch(self._models, frames, tracks)
        except BaseException as e:
            with self._condition:
                for job in batch:
                    self._tracks.pop(job.lane, None)
                    job.error = e if isinstance(e, Exception) else PoseServiceStopped(str(e))
            if not isinstance(e, Exception):
                raise
            return
        with self._condition:
            self.batches_run += 1
            self.frames_run += len(batch)
            self.batch_seconds += times.seconds
            self.model_seconds += times.model_seconds
            self.batch_cpu_seconds += times.cpu_seconds
            self.wait_seconds += sum(times.started - job.submitted for job in batch)
            for job, step in zip(batch, steps, strict=True):
                if job.lane not in self._forgotten:
                    self._tracks[job.lane] = step.next_track
                job.result = step

    def _release(self, batch: list[_Job]) -> None:
        """The batch's lanes may be scheduled again (another frame of one of them may be
        waiting); the condition's lock is held."""
        for job in batch:
            self._busy.discard(job.lane)
            self._forgotten.discard(job.lane)
        self._running -= 1
        self._condition.notify_all()

    def _deliver_finished(self, finished: queue.SimpleQueue[list[_Job] | None]) -> None:
        """The delivery thread: hands answered batches to the event loop, as many as are
        ready in one call, until every worker thread has ended."""
        running = self.workers
        while running:
            ready = [finished.get()]
            while not finished.empty():
                ready.append(finished.get_nowait())
            running -= ready.count(None)
            jobs = [job for batch in ready if batch is not None for job in batch]
            if jobs:
                anyio.from_thread.run_sync(_wake, jobs)


async def _in_thread(
    work: Callable[[queue.SimpleQueue[list[_Job] | None]], None],
    finished: queue.SimpleQueue[list[_Job] | None],
    limiter: anyio.CapacityLimiter,
) -> None:
    await anyio.to_thread.run_sync(work, finished, limiter=limiter)


def _wake(jobs: list[_Job]) -> None:
    """In the event loop: each job's lane takes its answer."""
    for job in jobs:
        job.done.set()


@dataclass(frozen=True, slots=True)
class _BatchTimes:
    started: float  # perf_counter when the worker thread took it up
    seconds: float  # wall time, from the start in the worker thread to the results
    model_seconds: float  # of which in the models' runs
    cpu_seconds: float  # CPU time: the worker thread's and its crop helpers'


def _timed_batch(
    models: PoseModels, frames: list[Image], tracks: list[Track | None]
) -> tuple[list[PoseStep], _BatchTimes]:
    """`estimate_batch`, each step carrying its share of the batch's CPU time (the thread's
    own and its crop helpers' (`khfsm.vision.fanout`); ONNX Runtime's intra-op threads, when
    more than one, are not counted), and the batch's times."""
    started, cpu, helpers, models_s = (
        time.perf_counter(),
        time.thread_time(),
        helper_cpu_s(),
        model_seconds(),
    )
    steps = estimate_batch(models, frames, tracks)
    times = _BatchTimes(
        started=started,
        seconds=time.perf_counter() - started,
        model_seconds=model_seconds() - models_s,
        cpu_seconds=time.thread_time() - cpu + helper_cpu_s() - helpers,
    )
    share = times.cpu_seconds / max(1, len(steps))
    return [replace(step, cpu_s=share) for step in steps], times
