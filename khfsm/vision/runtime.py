"""ONNX Runtime sessions: execution-provider choice, threads, one log line.

Sessions are created once per process by the loaders in pose.py / face.py. On CPU we pin
intra-op threads (default 1): on small VMs two threads per session are bimodal and sometimes
slower than one because of spin-waiting, and parallelism is better spent on separate lanes or
stages. One thread also keeps CPU results bit-identical from run to run.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)

PROVIDER_CHOICES = ("auto", "cpu", "cuda", "tensorrt")

_logged = False
_log_lock = threading.Lock()


def choose_providers(requested: str = "auto") -> tuple[list[str], str]:
    """Providers to ask for, most preferred first, and the reason for the choice."""
    if requested not in PROVIDER_CHOICES:
        raise ValueError(f"providers must be one of {PROVIDER_CHOICES}, not {requested!r}")
    available = set(ort.get_available_providers())
    if requested == "cpu":
        return ["CPUExecutionProvider"], "CPU requested"
    if requested == "tensorrt":
        if "TensorrtExecutionProvider" in available:
            return [
                "TensorrtExecutionProvider",
                "CUDAExecutionProvider",
                "CPUExecutionProvider",
            ], "TensorRT requested"
        return ["CPUExecutionProvider"], "TensorRT requested but not in this onnxruntime build"
    if "CUDAExecutionProvider" in available:
        # TensorRT is not chosen automatically: it compiles an engine per input shape, which
        # takes minutes on first use; CUDA is fast enough for these small models.
        return ["CUDAExecutionProvider", "CPUExecutionProvider"], "CUDA provider available"
    if requested == "cuda":
        return ["CPUExecutionProvider"], "CUDA requested but not in this onnxruntime build"
    return ["CPUExecutionProvider"], (
        "no CUDA provider in this onnxruntime build (install khfsm[gpu] on a CUDA machine)"
    )


def create_session(path: Path, threads: int = 1, providers: str = "auto") -> ort.InferenceSession:
    wanted, reason = choose_providers(providers)
    if "CUDAExecutionProvider" in wanted:
        _preload_cuda_libraries()
    ort.set_default_logger_severity(3)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Severity 3 = errors only: a CUDA provider whose libraries are missing would otherwise
    # print a wall of warnings before falling back; we report the outcome in one line instead.
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=wanted)
    _log_once(session.get_providers(), wanted, reason, threads)
    return session


@functools.cache  # once per process (a second call would only load them again)
def _preload_cuda_libraries() -> None:
    """Load CUDA and cuDNN from pip's nvidia-* packages (onnxruntime-gpu[cuda,cudnn]), once.

    The CUDA provider library finds them only on the loader's path (LD_LIBRARY_PATH, a system
    CUDA), which a virtual environment does not change; onnxruntime-gpu >= 1.21 offers
    `preload_dlls` for exactly this. Libraries it cannot find are left to the loader's path,
    so a system CUDA still works; if neither has them the session falls back to the CPU and
    `_log_once` says so.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:  # older builds: the loader's path only
        return
    try:
        preload()
    except (OSError, RuntimeError) as error:
        log.warning("could not preload the CUDA libraries (%s); using the loader's path", error)


def _log_once(used: Sequence[str], wanted: Sequence[str], reason: str, threads: int) -> None:
    global _logged
    with _log_lock:
        if _logged:
            return
        _logged = True
    if used[0] != wanted[0]:
        reason = f"{wanted[0]} failed to initialise (missing CUDA/cuDNN libraries?), fell back"
    log.info(
        "ONNX Runtime %s: inference on %s (%s), %d intra-op thread(s)",
        ort.__version__,
        used[0],
        reason,
        threads,
    )
