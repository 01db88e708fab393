"""Where a lane's camera video is decoded: by the CPU, or by an NVIDIA GPU's video decoder
(NVDEC) through FFmpeg's CUDA hwaccel, as PyAV exposes it (`av.codec.hwaccel`).

Why it matters: software decoding of a 1280×720 H.264 camera costs about 7.5 ms of CPU a
frame, so a hundred 25 fps lanes would need about 19 cores for decoding alone, more than the
16 of a GPU machine (issue 14's "≥ 100 lanes"). NVDEC does that work beside the inference; the
CPU only copies each decoded picture to host memory and hands the assessed ones to the models.

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
    """Where cameras are decoded, and why. `auto` decodes on the GPU only when inference
    runs there too: on a CPU-only machine there is nothing to offload to, and a GPU that
    inference does not use is a machine set up for something else."""
    if requested not in DECODER_CHOICES:
        raise ValueError(f"decoder must be one of {DECODER_CHOICES}, not {requested!r}")
    if requested == "cpu":
        return DecodePlan(None, "CPU decoding requested")
    if requested == "auto" and not inference_on_gpu:
        return DecodePlan(None, "inference runs on the CPU")
    if "cuda" not in hwdevices_available():
        return DecodePlan(None, "this PyAV's FFmpeg has no CUDA hwaccel")
    failure = cuda_decoder_failure()
    if failure is not None:
        return DecodePlan(None, f"the CUDA video decoder cannot be opened ({failure})")
    return DecodePlan("cuda", f"CUDA decoding {'requested' if requested == 'cuda' else 'on'}")


def cuda_decoder_failure() -> str | None:
    """Why FFmpeg cannot open a CUDA H.264 decoder on this machine, or None when it can."""
    try:
        HWAccel("cuda", options=dict(_CUDA_OPTIONS)).create(av.Codec("h264", "r"))
    except (av.FFmpegError, OSError, NotImplementedError) as error:
        return str(error) or type(error).__name__
    return None
