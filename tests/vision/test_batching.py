"""PoseService: batched results equal unbatched ones, per-lane order, no blocked event loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel
import cv2
import numpy as np
import pytest

from khfsm.vision.batching import PoseService, PoseServiceStopped
from khfsm.vision.batchrun import BatchRunner
from khfsm.vision.pose import PoseEstimate, PoseModels, PoseTracker, load_pose_models

Reader = Callable[[str], np.ndarray]


def _lane_sequences(parity_image: Reader) -> dict[Hashable, list[np.ndarray]]:
    """Short 'videos' made of photo variants: the first frame of each lane runs the detector,
    the following ones track (ROI from the previous landmarks)."""
    sequences: dict[Hashable, list[np.ndarray]] = {}
    for lane, name in enumerate(["astronaut.png", "grace_hopper.jpg", "sample6.jpg", "coffee.png"]):
        image = parity_image(name)
        shifted = np.roll(image, 7, axis=1)
        smaller = cv2.resize(image, None, fx=0.9, fy=0.9, interpolation=cv2.INTER_AREA)
        sequences[lane] = [image, shifted, image, smaller, cv2.flip(image, 1)]
    sequences["camera"] = [parity_image("camera_rgb.png")] * 3
    return sequences


def _same(a: PoseEstimate | None, b: PoseEstimate | None) -> bool:
    if a is None or b is None:
        return a is b
    return (
        a.landmarks.tobytes() == b.landmarks.tobytes()
        and a.world.tobytes() == b.world.tobytes()
        and a.score == b.score
    )


async def _serve_lanes(
    service: PoseService, sequences: dict[Hashable, list[np.ndarray]]
) -> dict[Hashable, list[PoseEstimate | None]]:
    results: dict[Hashable, list[PoseEstimate | None]] = {lane: [] for lane in sequences}

    async def lane_loop(lane: Hashable) -> None:
        for frame in sequences[lane]:
            results[lane].append(await service.estimate(lane, frame))

    async with anyio.create_task_group() as tg:
        tg.start_soon(service.run)
        async with anyio.create_task_group() as lanes:
            for lane in sequences:
                lanes.start_soon(lane_loop, lane)
        tg.cancel_scope.cancel()
    return results


@pytest.mark.parametrize(
    ("max_batch", "workers", "crop_threads"), [(4, 1, 1), (8, 2, 3), (1, 1, 1), (4, 2, 2)]
)
def test_batched_equals_unbatched(
    parity_image: Reader, max_batch: int, workers: int, crop_threads: int
) -> None:
    base = load_pose_models()
    sequences = _lane_sequences(parity_image)
    expected = {}
    for lane, frames in sequences.items():
        tracker = PoseTracker(base)
        expected[lane] = [tracker.process(frame) for frame in frames]

    models = PoseModels(base.detector, base.landmarker)  # its crop threads are this test's
    service = PoseService(
        models, max_batch=max_batch, max_wait_ms=20.0, workers=workers, crop_threads=crop_threads
    )
    assert models.crop_threads == crop_threads
    got = anyio.run(_serve_lanes, service, sequences)

    for lane in sequences:
        for index, (a, b) in enumerate(zip(expected[lane], got[lane], strict=True)):
            assert _same(a, b), f"lane {lane} frame {index} differs from the unbatched result"
    assert all(r is None for r in got[3]), "coffee.png has no person"
    if max_batch > 1:
        assert service.frames_run > service.batches_run, "frames were never batched together"
    # every batch ran the real models on CPU: some milliseconds each, never none; most of it
    # in the models' runs, which are part of the batch's time, and all of it CPU work
    assert service.batch_seconds > 0.001 * service.batches_run > 0
    assert 0.5 * service.batch_seconds < service.model_seconds < service.batch_seconds
    assert service.batch_cpu_seconds > 0.5 * service.model_seconds
    # four lanes share one worker: most frames waited for another lane's batch
    assert service.wait_seconds > 0.001 * service.frames_run


def test_frames_of_one_lane_come_back_in_order(parity_image: Reader) -> None:
    models = load_pose_models()
    frames = [parity_image(n) for n in ["astronaut.png", "coffee.png", "grace_hopper.jpg"]] * 2
    tracker = PoseTracker(models)
    expected = [tracker.process(frame) for frame in frames]

    async def main() -> list[PoseEstimate | None]:
        service = PoseService(models, max_batch=4, max_wait_ms=5.0, workers=2)
        results: list[PoseEstimate | None] = [None] * len(frames)

        async def submit(index: int) -> None:
            results[index] = await service.estimate("lane", frames[index])

        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            async with anyio.create_task_group() as submitters:
                for index in range(len(frames)):
                    submitters.start_soon(submit, index)
                    await anyio.lowlevel.checkpoint()  # submission order = frame order
            tg.cancel_scope.cancel()
        return results

    got = anyio.run(main)
    assert all(_same(a, b) for a, b in zip(expected, got, strict=True))


def test_event_loop_keeps_running_during_inference(parity_image: Reader) -> None:
    """While a frame is in inference, other tasks keep getting turns on the event loop.

    Counted in turns, not milliseconds (how long the loop may stall is a figure for
    benchmarks/bench_timings.py): one inference takes thousands of loop turns when it runs in
    a worker thread, and none at all when it blocks the loop, so the margin is wide both ways.
    No batching wait (max_wait_ms=0): the loop would spin through a wait even if it then blocked.
    """
    models = load_pose_models()
    frame = parity_image("sample6.jpg")

    async def main() -> list[int]:
        service = PoseService(models, max_batch=4, max_wait_ms=0.0)
        in_flight = False
        turns = 0
        per_frame: list[int] = []

        async def other_task() -> None:
            nonlocal turns
            while True:
                await anyio.lowlevel.checkpoint()
                turns += in_flight

        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            tg.start_soon(other_task)
            for _ in range(4):
                before, in_flight = turns, True
                with anyio.fail_after(30):
                    await service.estimate("a", frame)
                in_flight = False
                per_frame.append(turns - before)
            tg.cancel_scope.cancel()
        return per_frame

    turns_per_frame = anyio.run(main)
    # A loop blocked by the inference gives the other task a turn or two around it.
    assert min(turns_per_frame) >= 20, turns_per_frame


def test_workers_take_their_next_batch_without_the_event_loop(parity_image: Reader) -> None:
    """A worker that has finished a batch takes the next waiting frame itself: a busy event
    loop (here: blocked outright) does not stall inference. When the loop formed each batch,
    the second lane's frame waited for the loop and this counted at most 1 batch."""
    models = load_pose_models()
    frame = parity_image("astronaut.png")

    async def main() -> int:
        service = PoseService(models, max_batch=1, max_wait_ms=0.0, workers=1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            await anyio.sleep(0.2)  # its threads started
            for lane in ("a", "b", "c"):
                tg.start_soon(service.estimate, lane, frame)
            await anyio.lowlevel.checkpoint()  # the frames submitted
            time.sleep(5)  # noqa: ASYNC251 - the point: the loop blocked, no task or callback runs
            ran = service.batches_run
            tg.cancel_scope.cancel()
        return ran

    assert anyio.run(main) == 3


def test_frames_not_taken_up_fail_when_the_service_stops(parity_image: Reader) -> None:
    """Stopping the service answers the batch in flight and fails the frames still waiting
    with PoseServiceStopped: no lane waits forever."""
    models = load_pose_models()
    frame = parity_image("astronaut.png")
    frames = 6

    async def main() -> tuple[list[str], int]:
        service = PoseService(models, max_batch=1, max_wait_ms=0.0, workers=1)
        outcomes = [""] * frames
        first_answer = anyio.Event()

        async def submit(index: int) -> None:
            try:
                await service.estimate("lane", frame)  # one lane: one frame at a time
                outcomes[index] = "answered"
                first_answer.set()
            except PoseServiceStopped:
                outcomes[index] = "stopped"

        async def serve(scope: anyio.CancelScope) -> None:
            with scope:
                await service.run()

        service_scope = anyio.CancelScope()
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(serve, service_scope)
                await anyio.sleep(0.2)
                for index in range(frames):
                    tg.start_soon(submit, index)
                    await anyio.lowlevel.checkpoint()  # submission order = frame order
                await first_answer.wait()
                service_scope.cancel()
        return outcomes, service.frames_run

    outcomes, run = anyio.run(main)
    answered = outcomes.count("answered")
    assert outcomes == ["answered"] * answered + ["stopped"] * (frames - answered), outcomes
    assert answered == run and 1 <= answered < frames


@dataclass(frozen=True)
class _FailsOnce(BatchRunner):
    """A model runner whose first run fails, as a model can (out of memory, a driver error);
    then it runs its session as any runner does."""

    failures: list[str] = field(default_factory=list)

    def run(self, batch: np.ndarray, count: int | None = None) -> list[np.ndarray]:
        if not self.failures:
            self.failures.append("the model failed")
            raise RuntimeError(self.failures[0])
        return super().run(batch, count)


def test_a_failed_batch_fails_its_frames_and_the_service_goes_on(parity_image: Reader) -> None:
    """The lanes of a batch whose model run fails get the error; the worker thread survives
    it, and the lanes' next frames run the detector afresh."""
    base = load_pose_models()
    image = parity_image("astronaut.png")
    fresh = PoseTracker(base).process(image)
    models = PoseModels(base.detector, base.landmarker)
    detector, landmarker = models.runners
    assert isinstance(detector, BatchRunner)
    models.use_runners(_FailsOnce(detector.session, detector.io_binding), landmarker)

    async def main() -> tuple[list[str], list[PoseEstimate | None]]:
        service = PoseService(models, max_batch=4, max_wait_ms=20.0, workers=1)
        errors: list[str] = []
        later: list[PoseEstimate | None] = []

        async def lane(name: str) -> None:
            try:
                await service.estimate(name, image)
            except RuntimeError as error:
                errors.append(str(error))
            later.append(await service.estimate(name, image))

        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            with anyio.fail_after(30):
                async with anyio.create_task_group() as lanes:
                    for name in ("a", "b"):
                        lanes.start_soon(lane, name)
            tg.cancel_scope.cancel()
        return errors, later

    errors, later = anyio.run(main)
    assert errors == ["the model failed"] * 2  # both lanes were in the failed batch
    assert all(_same(result, fresh) for result in later)


def test_forget_restarts_detection(parity_image: Reader) -> None:
    models = load_pose_models()
    image = parity_image("astronaut.png")
    fresh = PoseTracker(models).process(image)

    async def main() -> PoseEstimate | None:
        service = PoseService(models, max_wait_ms=0.0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            await service.estimate("a", image)
            service.forget("a")
            result = await service.estimate("a", image)
            tg.cancel_scope.cancel()
        return result

    assert _same(anyio.run(main), fresh), "after forget() the frame must be detected afresh"


def test_bad_frame_is_rejected_before_batching() -> None:
    service = PoseService(load_pose_models())
    with pytest.raises(ValueError, match="BGR uint8"):
        anyio.run(service.estimate, "a", np.zeros((4, 4, 4), np.uint8))


class _SizedService(PoseService):
    """The real service, keeping the size of each batch it ran."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.sizes: list[int] = []

    def _process(self, batch: list) -> None:  # type: ignore[type-arg]
        self.sizes.append(len(batch))
        super()._process(batch)


@pytest.mark.parametrize(
    ("lanes", "workers", "batch_after_ms", "batches"),
    [
        (2, 2, 0.0, [1, 1]),  # one frame each: both cores run, neither waits for the other
        (4, 2, 0.0, [2, 2]),  # behind: each idle worker takes its share, not one all four
        (3, 1, 0.0, [3]),  # one worker takes every frame waiting, up to max_batch
        (6, 1, 0.0, [4, 2]),  # no more than max_batch, the rest in the next batch
        (4, 2, 30.0, [2, 2]),  # the frames waited 100 ms before a worker came: behind
        (3, 1, 60_000.0, [1, 1, 1]),  # not behind yet: one frame a batch
    ],
)
def test_frames_already_waiting_are_shared_among_the_idle_workers(
    parity_image: Reader, lanes: int, workers: int, batch_after_ms: float, batches: list[int]
) -> None:
    """A CPU's plan: no wait to fill a batch (max_wait_ms=0), so a batch holds the frames
    already waiting: one, while the oldest can still be back within batch_after_ms of its
    hand-in, else its worker's share of them. Every frame waits 100 ms before the workers
    start, so the batches they take are known."""
    base = load_pose_models()
    service = _SizedService(
        PoseModels(base.detector, base.landmarker),
        max_batch=4,
        max_wait_ms=0.0,
        workers=workers,
        batch_after_ms=batch_after_ms,
    )
    frame = parity_image("astronaut.png")

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            async with anyio.create_task_group() as submitters:
                for lane in range(lanes):
                    submitters.start_soon(service.estimate, lane, frame)
                await anyio.wait_all_tasks_blocked()  # every frame waits, no worker yet
                await anyio.sleep(0.1)
                tg.start_soon(service.run)
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert sorted(service.sizes) == sorted(batches)
    assert service.frames_run == lanes
