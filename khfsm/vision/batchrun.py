"""Running one ONNX session on a batch of frames, the way the execution provider likes it.

On CPU a plain `session.run` is best: inputs and outputs already live in host memory. On
CUDA, `PoseService` batches frames from many lanes, and two things pay off:

* I/O binding: the input batch is bound once (one host-to-device copy for the whole batch)
  and the outputs are bound on the device and copied back together, instead of ONNX Runtime
  allocating and copying per output on every call;
* few batch shapes: a batch of n frames is padded with zero frames to the next power of two
  (at most `fixed_batch`), so the CUDA kernels, cuDNN's algorithm choice and the memory plans
  are made for 1, 2, 4, 8 and 16 frames only, once each (`PoseService.warm_up`), instead of
  for every batch size seen. Each sample is computed independently, so padding never changes
  a real frame's result (tests/vision/test_batchrun.py checks this bit for bit on CPU, where
  the same code path runs with device "cpu").

Why powers of two and not one shape: padding every batch to 16 made the GPU compute 16
frames for the 3.5 that a batch held on average at 32 lanes of an H200 machine
(benchmarks/bench_server.py, 8 servers), and the GPU was busier there (57 %) than at 128
lanes (40 %), whose batches held 14. Powers of two pad a batch to less than twice its frames.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import onnxruntime as ort

_spent = threading.local()


class ModelRunner(Protocol):
    """How `PoseModels` runs a model: a `BatchRunner`."""

    @property
    def io_binding(self) -> bool: ...  # True: the GPU's way (batches padded, bound I/O)

    def batch_of(self, count: int, frame: tuple[int, ...]) -> np.ndarray: ...

    def run(self, batch: np.ndarray, count: int | None = None) -> list[np.ndarray]: ...


def model_seconds() -> float:
    """Wall seconds this thread has spent in the models' runs so far (ONNX Runtime's run,
    the copies to and from the device included): what a batch's time is split by."""
    return float(getattr(_spent, "seconds", 0.0))


@dataclass(frozen=True, slots=True)
class BatchRunner:
    session: ort.InferenceSession
    io_binding: bool = False  # default: on when the session runs on CUDA
    fixed_batch: int = 0  # the largest shape; pad to a power of two up to it (0: no padding)

    @classmethod
    def for_session(cls, session: ort.InferenceSession, fixed_batch: int = 0) -> BatchRunner:
        on_gpu = session.get_providers()[0] in (
            "CUDAExecutionProvider",
            "TensorrtExecutionProvider",
        )
        return cls(session, io_binding=on_gpu, fixed_batch=fixed_batch if on_gpu else 0)

    @property
    def device(self) -> str:
        return "cuda" if self.session.get_providers()[0] != "CPUExecutionProvider" else "cpu"

    def shape_for(self, count: int) -> int:
        """How many frames a batch of `count` runs as: the next power of two, at most
        `fixed_batch` (a batch larger than that runs as it is)."""
        if self.fixed_batch <= 0 or count >= self.fixed_batch:
            return count
        return min(self.fixed_batch, 1 << (count - 1).bit_length())

    def shapes(self) -> list[int]:
        """Every batch size this runner runs with (its shapes), smallest first."""
        if self.fixed_batch <= 0:
            return []
        return sorted({self.shape_for(count) for count in range(1, self.fixed_batch + 1)})

    def batch_of(self, count: int, frame: tuple[int, ...]) -> np.ndarray:
        """A float32 array for `count` frames of shape `frame`, shaped as the batch will run:
        the padding frames after them are already zero. Cropping the frames straight into it
        (`crop_to_tensor(out=...)`) spares two copies of the whole batch, the stacking of the
        frames and the padding, which at 16 frames of 256x256 are 12.6 MB each."""
        batch = np.empty((self.shape_for(count), *frame), np.float32)
        batch[count:] = 0.0
        return batch

    def run(self, batch: np.ndarray, count: int | None = None) -> list[np.ndarray]:
        """The session's outputs for the first `count` frames of `batch` (first axis =
        frames; default all), as host arrays. A batch from `batch_of` runs as it is; any other
        is padded here."""
        count = batch.shape[0] if count is None else count
        shape = self.shape_for(count)
        if batch.shape[0] != shape:
            padding = np.zeros((shape - count, *batch.shape[1:]), batch.dtype)
            batch = np.concatenate([batch[:count], padding])
        name = self.session.get_inputs()[0].name
        started = time.perf_counter()
        try:
            outputs = self._run(name, batch)
        finally:
            _spent.seconds = model_seconds() + time.perf_counter() - started
        return [np.asarray(output)[:count] for output in outputs]

    def _run(self, name: str, batch: np.ndarray) -> list[np.ndarray]:
        if not self.io_binding:
            return list(self.session.run(None, {name: batch}))
        binding = self.session.io_binding()
        binding.bind_cpu_input(name, np.ascontiguousarray(batch))
        for output in self.session.get_outputs():
            binding.bind_output(output.name, self.device)
        self.session.run_with_iobinding(binding)
        return list(binding.copy_outputs_to_cpu())


def warm_up(runner: BatchRunner) -> list[int]:
    """Run each of `runner`'s batch shapes once on zero frames, so that the first lanes do not
    wait while CUDA and cuDNN plan them (cuDNN tries its algorithms for each new shape); the
    shapes run."""
    spec = runner.session.get_inputs()[0]
    # The models' inputs: a dynamic batch axis, then fixed sizes (khfsm.models, manifest).
    frame = [int(size) for size in spec.shape[1:]]
    shapes = runner.shapes()
    for shape in shapes:
        runner.run(np.zeros((shape, *frame), np.float32))
    return shapes
