"""How the pose service's workers and batch size are chosen for a machine."""

from khfsm.vision.batching import GPU_BATCH, GPU_WORKERS, inference_plan


def test_cpu_runs_one_frame_per_core_at_once() -> None:
    # a batch runs on one core: spreading frames over the cores is what uses them
    assert inference_plan(on_gpu=False, cores=2) == (2, 1)
    assert inference_plan(on_gpu=False, cores=16) == (16, 1)


def test_gpu_runs_few_large_batches() -> None:
    assert inference_plan(on_gpu=True, cores=16) == (GPU_WORKERS, GPU_BATCH)
    assert GPU_BATCH > 1


def test_explicit_settings_win() -> None:
    assert inference_plan(on_gpu=False, workers=1, max_batch=4, cores=8) == (1, 4)
    assert inference_plan(on_gpu=True, workers=3, max_batch=0, cores=8) == (3, GPU_BATCH)
