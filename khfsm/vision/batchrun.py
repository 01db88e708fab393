"""Running one ONNX session on a batch of frames, the way the execution provider likes it.

On CPU a plain `session.run` is best: inputs and outputs already live in host memory. On
CUDA, `PoseService` batches frames from many lanes, and two things pay off:

* I/O binding: the input batch is bound once (one host-to-device copy for the whole batch)
  and the outputs are bound on the device and copied back together, instead of ONNX Runtime
  allocating and copying per output on every call;
* a fixed batch shape: a batch of n < `fixed_batch` frames is padded with zero frames, so
  the CUDA kernels and memory plans are made once for one shape instead of once per batch
  size seen. Each sample is computed independently, so padding never changes a real frame's
  result (tests/vision/test_batchrun.py checks this bit for bit on CPU, where the same code
  path runs with device "cpu").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort


@dataclass(frozen=True, slots=True)
class BatchRunner:
    session: ort.InferenceSession
    io_binding: bool = False  # default: on when the session runs on CUDA
    fixed_batch: int = 0  # pad batches to this size (0: run them as they come)

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

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """The session's outputs for `batch` (first axis = frames), as host arrays."""
        count = batch.shape[0]
        if self.fixed_batch > count:
            padding = np.zeros((self.fixed_batch - count, *batch.shape[1:]), batch.dtype)
            batch = np.concatenate([batch, padding])
        name = self.session.get_inputs()[0].name
        if not self.io_binding:
            outputs = self.session.run(None, {name: batch})
        else:
            binding = self.session.io_binding()
            binding.bind_cpu_input(name, np.ascontiguousarray(batch))
            for output in self.session.get_outputs():
                binding.bind_output(output.name, self.device)
            self.session.run_with_iobinding(binding)
            outputs = binding.copy_outputs_to_cpu()
        return [np.asarray(output)[:count] for output in outputs]
