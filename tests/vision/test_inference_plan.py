"""How the pose service's workers, batch size and crop threads are chosen for a machine."""

from khfsm.vision.batching import (
    CPU_BATCH,
    CPU_BATCH_AFTER_MS,
    CPU_MAX_WAIT_MS,
    GPU_BATCH,
    GPU_CROP_THREADS,
    GPU_MAX_WAIT_MS,
    GPU_WORKERS,
    inference_plan,
)


def test_cpu_runs_a_worker_per_core_on_frames_already_waiting() -> None:
    # a batch runs on one core: spreading frames over the cores is what uses them; batches
    # hold only frames already waiting (no wait to fill them), more than one only when the
    # lanes are behind
    cpu = (CPU_BATCH, 1, CPU_MAX_WAIT_MS, CPU_BATCH_AFTER_MS)
    assert inference_plan(on_gpu=False, cores=2) == (2, *cpu)
    assert inference_plan(on_gpu=False, cores=16) == (16, *cpu)
    assert CPU_MAX_WAIT_MS == 0.0 < GPU_MAX_WAIT_MS
    assert CPU_BATCH_AFTER_MS > 0.0


def test_gpu_runs_few_large_batches_cropped_in_several_threads() -> None:
    assert inference_plan(on_gpu=True, cores=16) == (
        GPU_WORKERS,
        GPU_BATCH,
        GPU_CROP_THREADS,
        GPU_MAX_WAIT_MS,
        0.0,  # a GPU batch takes every frame waiting, behind or not
    )
    assert GPU_BATCH > 1 and GPU_CROP_THREADS > 1
    # never more crop threads than cores, nor than frames in a batch
    assert inference_plan(on_gpu=True, cores=2).crop_threads == 2
    assert inference_plan(on_gpu=True, max_batch=1, cores=16).crop_threads == 1


def test_explicit_settings_win() -> None:
    assert inference_plan(on_gpu=False, workers=1, max_batch=4, cores=8)[:3] == (1, 4, 1)
    assert inference_plan(on_gpu=False, max_wait_ms=5.0).max_wait_ms == 5.0
    assert inference_plan(on_gpu=True, max_wait_ms=0.0).max_wait_ms == 0.0
    assert inference_plan(on_gpu=True, workers=3, max_batch=0, cores=8).workers == 3
    assert inference_plan(on_gpu=True, workers=3, max_batch=0, cores=8).max_batch == GPU_BATCH
    assert inference_plan(on_gpu=False, cores=8, crop_threads=3).crop_threads == 3
