"""The GPU path's batch runner (I/O binding, power-of-two batch shapes), exercised on CPU: the same
code with device "cpu" must give exactly what plain `session.run` gives, padding included,
and a PoseService using it must give the lanes exactly what an unbatched tracker gives."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import numpy as np
import pytest

from khfsm.vision.batching import PoseService
from khfsm.vision.batchrun import BatchRunner, warm_up
from khfsm.vision.pose import (
    DETECTOR_SIZE,
    LANDMARK_SIZE,
    PoseEstimate,
    PoseModels,
    PoseTracker,
    load_pose_models,
)


@pytest.mark.parametrize("count", [1, 3, 5])  # run as 1, 4 and 8 frames
def test_io_binding_and_padding_give_exactly_the_plain_outputs(count: int) -> None:
    models = load_pose_models()
    rng = np.random.default_rng(3)
    for session, size in ((models.detector, DETECTOR_SIZE), (models.landmarker, LANDMARK_SIZE)):
        batch = rng.uniform(0, 1, (count, size, size, 3)).astype(np.float32)
        plain = BatchRunner(session).run(batch)
        bound = BatchRunner(session, io_binding=True, fixed_batch=8).run(batch)
        assert len(plain) == len(bound)
        for a, b in zip(plain, bound, strict=True):
            assert a.shape == b.shape and a.shape[0] == count
            assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("count", [1, 3, 5])
def test_a_batch_made_for_its_shape_runs_as_it_is_and_gives_the_same_outputs(count: int) -> None:
    landmarker = load_pose_models().landmarker
    runner = BatchRunner(landmarker, io_binding=True, fixed_batch=8)
    rng = np.random.default_rng(5)
    frames = rng.uniform(0, 1, (count, LANDMARK_SIZE, LANDMARK_SIZE, 3)).astype(np.float32)
    batch = runner.batch_of(count, (LANDMARK_SIZE, LANDMARK_SIZE, 3))
    assert batch.shape[0] == runner.shape_for(count) and batch.dtype == np.float32
    assert not batch[count:].any()  # the padding frames are zero
    batch[:count] = frames
    for a, b in zip(runner.run(batch, count), runner.run(frames), strict=True):
        assert a.shape[0] == count and a.tobytes() == b.tobytes()


def test_batches_are_padded_to_a_power_of_two_up_to_the_largest_shape() -> None:
    session = load_pose_models().landmarker
    sixteen = BatchRunner(session, io_binding=True, fixed_batch=16)
    assert [sixteen.shape_for(n) for n in (1, 2, 3, 4, 5, 8, 9, 16, 17)] == [
        1, 2, 4, 4, 8, 8, 16, 16, 17,
    ]  # fmt: skip
    assert sixteen.shapes() == [1, 2, 4, 8, 16]
    assert BatchRunner(session, fixed_batch=12).shapes() == [1, 2, 4, 8, 12]
    unpadded = BatchRunner(session)
    assert unpadded.shape_for(3) == 3 and unpadded.shapes() == []


def test_warming_up_runs_each_shape_of_both_models_once_and_only_on_the_gpu_path() -> None:
    base = load_pose_models()
    assert PoseService(base, max_batch=4).warm_up() == []  # CPU: nothing to plan
    models = PoseModels(base.detector, base.landmarker)
    models.use_batching(4)
    assert models.on_gpu  # the GPU's code path, on CPU
    assert [runner.fixed_batch for runner in models.runners] == [4, 4]
    assert PoseService(models, max_batch=4).warm_up() == [1, 2, 4]
    assert warm_up(BatchRunner(base.detector, io_binding=True, fixed_batch=2)) == [1, 2]


def test_cpu_sessions_run_plainly() -> None:
    models = load_pose_models()
    runner = BatchRunner.for_session(models.landmarker, fixed_batch=8)
    assert not runner.io_binding and runner.fixed_batch == 0 and not models.on_gpu


def test_pose_service_on_the_gpu_path_matches_the_tracker(
    parity_image: Callable[[str], np.ndarray],
) -> None:
    base = load_pose_models()
    models = PoseModels(base.detector, base.landmarker)
    models.use_batching(4)
    frames = [parity_image(name) for name in ("astronaut.png", "grace_hopper.jpg")]
    service = PoseService(models, max_batch=4, max_wait_ms=20.0)
    results: dict[int, PoseEstimate | None] = {}

    async def serve() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)

            async def lane(index: int) -> None:
                results[index] = await service.estimate(index, frames[index])

            async with anyio.create_task_group() as lanes:
                for index in range(len(frames)):
                    lanes.start_soon(lane, index)
            tg.cancel_scope.cancel()

    anyio.run(serve)
    assert service.batches_run == 1  # both lanes in one padded batch
    for index, frame in enumerate(frames):
        expected = PoseTracker(base).process(frame)
        got = results[index]
        assert (got is None) == (expected is None)
        if got is not None and expected is not None:
            assert got.landmarks.tobytes() == expected.landmarks.tobytes()
            assert got.world.tobytes() == expected.world.tobytes()
