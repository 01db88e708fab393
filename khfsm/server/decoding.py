"""Where a lane's camera video is decoded: by the CPU, or by an NVIDIA GPU's video decoder
(NVDEC) through FFmpeg's CUDA hwaccel, as PyAV exposes it (`av.codec.hwaccel`).

Why it might matter: software decoding of a 1280×720 H.264 camera costs about 7.5 ms of CPU
a frame on a slow core, so a hundred 25 fps lanes would need many cores for decoding alone.
NVDEC does that work beside the inference; the CPU only copies each decoded picture to host
memory and hands the assessed ones to the models.

Measured, it does not pay yet, so `auto` decodes on the CPU: on an H200 machine with 16 cores
(benchmarks/bench_server.py, 720p, 8 server processes) the lanes assessed 580, 814 and 902
frames/s at 32, 64 and 96 lanes with NVDEC against 614, 920 and 1086 with the CPU decoding,
and the servers held the GIL 5.3-5.9 ms per assessed frame against 2.4-3.7 ms, while the
CPU's decoding cost only 0.06 CPU-seconds per lane-second there. Where the GIL time goes was
not profiled (every picture NVDEC decodes, 25 a second, assessed or not, is copied to host
memory through PyAV). `cuda` is still offered, for machines whose cores are slower.

FFmpeg shares CUDA's primary context (one context, and its memory, for a hundred cameras and
the inference) only when that context was made with blocking synchronisation
(libavutil/hwcontext_cuda.c: "Primary context already active with incompatible flags"), while
ONNX Runtime makes it first with the default flags; so with `cuda` asked for, the site sets
the flags before any session exists (`share_primary_context_with_ffmpeg`). Without that the
decoder never opened where inference ran on the GPU.

H.264 and H.265 decoding is exact by the standards, so the GPU's pictures are the software
decoder's samples (laid out as NV12, which `khfsm.vision.media.to_bgr` converts exactly as
the CPU's planes; 10-bit P010 already converts as they do): keypoints, counts and the
recording do not depend on where a camera was decoded (the recording is the camera's own
packets either way).

The choice is made once, when the site opens (`choose_decoder`): the device is opened once to
learn whether it works, so a machine without a GPU (or without its driver) says why in one
log line instead of every camera failing over. Each camera then asks for it when it opens
(`Camera(decode=...)`); a codec the GPU cannot decode (MJPEG) is decoded in software, and a
camera whose hardware open fails is reopened in software (`khfsm.server.camera`).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import av
from av.codec.hwaccel import HWAccel, hwdevices_available

from khfsm.settings import DECODER_CHOICES

# The pixel formats a device's decoded pictures arrive in once copied to host memory (FFmpeg's
# libavcodec/nvdec.c: NV12 and P010/P016 for 4:2:0, their 4:2:2 kin, planar 4:4:4). FFmpeg
# settles a stream's decoder only at its first keyframe, and with a software fallback allowed
# it decodes on the CPU a stream the device cannot (H.264 High 10 or 4:2:2 on NVDEC), whose
# planar 4:2:0 or 4:2:2 pictures are not in this list. (A 4:4:4 stream reads as the device's
# either way: its planar pictures look alike.)
_DEVICE_PICTURE_FORMATS = {
    "cuda": frozenset(
        {"nv12", "p010le", "p016le", "nv16", "p210le", "p216le", "yuv444p", "yuv444p16le"}
    )
}

# The CUDA primary context: the one ONNX Runtime's CUDA execution provider also uses, so a
# hundred cameras share one context (and its memory) with inference instead of one each.
_CUDA_OPTIONS: dict[str, object] = {"primary_ctx": "1"}


@dataclass(frozen=True, slots=True)
class DecodePlan:
    device: str | None  # "cuda", or None: the CPU
    reason: str

    @property
    def name(self) -> str:
        return self.device or "cpu"

    def failure(self) -> str | None:
        """Why the planned device cannot decode now, or None when it can (or is the CPU)."""
        return cuda_decoder_failure() if self.device == "cuda" else None

    def decoded_on_device(self, picture_format: str) -> bool:
        """Whether a picture in `picture_format` (a stream's first decoded picture) can have
        come from this plan's device rather than FFmpeg's software fallback."""
        return self.device is not None and picture_format in _DEVICE_PICTURE_FORMATS[self.device]

    def hwaccel(self) -> HWAccel | None:
        """A fresh hwaccel request for one camera (PyAV binds each to one decoder)."""
        if self.device is None:
            return None
        return HWAccel(self.device, allow_software_fallback=True, options=dict(_CUDA_OPTIONS))


def choose_decoder(requested: str, inference_on_gpu: bool) -> DecodePlan:
    """Where cameras are decoded, and why. `auto` decodes on the CPU (measured faster, see
    the module's docstring); `cuda` on the GPU's decoder when FFmpeg can open it."""
    if requested not in DECODER_CHOICES:
        raise ValueError(f"decoder must be one of {DECODER_CHOICES}, not {requested!r}")
    if requested == "cpu":
        return DecodePlan(None, "CPU decoding requested")
    if requested == "auto":
        if not inference_on_gpu:
            return DecodePlan(None, "inference runs on the CPU")
        return DecodePlan(None, "auto: the CPU's decoding measured faster than NVDEC's")
    if "cuda" not in hwdevices_available():
        return DecodePlan(None, "this PyAV's FFmpeg has no CUDA hwaccel")
    failure = cuda_decoder_failure()
    if failure is not None:
        return DecodePlan(None, f"the CUDA video decoder cannot be opened ({failure})")
    return DecodePlan("cuda", "CUDA decoding requested")


def cuda_decoder_failure() -> str | None:
    """Why FFmpeg cannot open a CUDA H.264 decoder on this machine, or None when it can."""
    try:
        HWAccel("cuda", options=dict(_CUDA_OPTIONS)).create(av.Codec("h264", "r"))
    except (av.FFmpegError, OSError, NotImplementedError) as error:
        return str(error) or type(error).__name__
    return None


# cuda.h: CUresult 0 is CUDA_SUCCESS; CU_CTX_SCHED_BLOCKING_SYNC is FFmpeg's desired_flags.
_CUDA_SUCCESS = 0
_CU_CTX_SCHED_BLOCKING_SYNC = 0x04


def share_primary_context_with_ffmpeg(device: int = 0) -> str | None:
    """Give GPU `device`'s primary context the flags FFmpeg's CUDA hwaccel insists on
    (blocking synchronisation), before ONNX Runtime creates it with others; None when done,
    else why not (no NVIDIA driver on this machine, or a context already active). Through the
    driver API (libcuda), which is there wherever a GPU is, whoever loads the CUDA runtime."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError as error:
        return f"no NVIDIA driver ({error})"
    handle = ctypes.c_int()
    steps = (
        ("cuInit", lambda: driver.cuInit(0)),
        ("cuDeviceGet", lambda: driver.cuDeviceGet(ctypes.byref(handle), device)),
        (
            "cuDevicePrimaryCtxSetFlags",
            lambda: driver.cuDevicePrimaryCtxSetFlags(handle, _CU_CTX_SCHED_BLOCKING_SYNC),
        ),
    )
    for name, call in steps:
        result = call()
        if result != _CUDA_SUCCESS:
            return f"{name} returned CUDA error {result}"
    return None
