"""Checking a lane's source at prepare: a camera is opened once and must deliver a frame; a
photo must decode. Shared by every kind of lane, off the event loop, with operator-worded
errors (`RequestError`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import anyio
import numpy as np

from khfsm.server.camera import CameraError, CameraInfo, open_camera, read_image
from khfsm.server.context import LaneContext
from khfsm.server.paths import CameraSource
from khfsm.server.protocol import RequestError

# A camera's first frame after (re)opening may take a while: the RTSP handshake, and the
# decoder waits for the next keyframe (IP cameras send one every 1-4 s). The grace period
# counts from the start only once this allowance has been added.
FIRST_FRAME_ALLOWANCE_S = 5.0
FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"


def use_ffmpeg_capture_options(options: str) -> None:
    """OpenCV takes FFmpeg's capture options (e.g. RTSP over TCP) only from this process
    variable, read at every open: set it from the settings, unless the process already has."""
    if options:
        os.environ.setdefault(FFMPEG_OPTIONS_ENV, options)


@dataclass(frozen=True, slots=True)
class CameraProbe:
    info: CameraInfo
    images: tuple[np.ndarray, ...]  # the first frames read (at least one), for readiness


async def probe_camera(ctx: LaneContext, source: CameraSource, keep: int = 1) -> CameraProbe:
    """Open the camera once to check it and learn its frame size, keep up to `keep` of its
    first frames (what the readiness report looks at), then release it."""

    allowance = ctx.settings.camera_grace_s + FIRST_FRAME_ALLOWANCE_S

    def probe() -> CameraProbe:
        camera = open_camera(source, timeout_s=allowance)
        try:
            info = camera.open()
            images: list[np.ndarray] = []
            while len(images) < max(1, keep):
                frame = camera.read()
                if frame is None:
                    break  # a file shorter than `keep` frames, or a stream's hiccup
                images.append(frame.image)
            if not images:
                raise CameraError(f"camera {source.display} opened but delivered no frame")
            return CameraProbe(info, tuple(images))
        finally:
            camera.close()

    try:
        with anyio.fail_after(allowance + 1.0):
            return await anyio.to_thread.run_sync(
                probe, abandon_on_cancel=True, limiter=ctx.camera_limiter
            )
    except CameraError as error:
        raise RequestError(f"{error}; check CapturePath and that the camera is on") from None
    except TimeoutError:
        raise RequestError(
            f"camera {source.display} did not answer within {allowance + 1.0:g} s; "
            "check CapturePath and the network"
        ) from None


async def read_photo(ctx: LaneContext, source: CameraSource) -> np.ndarray:
    """The photo `source` names; `CameraError` if it cannot be read."""
    return await anyio.to_thread.run_sync(read_image, str(source.target), limiter=ctx.work_limiter)


async def check_photo(ctx: LaneContext, source: CameraSource) -> np.ndarray:
    """The photo at prepare: `RequestError` if it cannot be read."""
    try:
        return await read_photo(ctx, source)
    except CameraError as error:
        raise RequestError(f"CapturePath: {error}") from None
