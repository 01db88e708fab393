"""A lane's camera, read with OpenCV. Every method blocks: call them from a worker thread.

Timestamps place each frame on the camera's own timeline, in seconds from its first frame:

* a file: source frame i is at i / (the container's frame rate), as in `khfsm.assess`, so a
  file used as a camera yields exactly the frames an offline assessment of it would;
* a live source (RTSP, HTTP, device): the moment the frame arrived (monotonic clock). IP
  cameras restart their presentation times on every reconnect and some send none, so the
  arrival time is the one clock every source has.

FFmpeg's capture options (RTSP over TCP) come from `Settings.ffmpeg_capture_options`, set
for the process when a site opens (`khfsm.server.sources.use_ffmpeg_capture_options`).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from khfsm.errors import KhfsmError
from khfsm.server.paths import CameraSource, SourceKind


class CameraError(KhfsmError, RuntimeError):
    """The camera cannot be opened or read; the message names it (password redacted)."""


@dataclass(frozen=True, slots=True)
class CameraInfo:
    width: int
    height: int
    fps: float  # the source's nominal frame rate, 0 when it declares none


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    image: np.ndarray  # BGR uint8
    timestamp: float  # seconds on the camera's timeline, from its first frame


class Camera:
    """One open camera or video file. `close` may be called from another thread."""

    def __init__(self, source: CameraSource, timeout_s: float = 5.0) -> None:
        self.source = source
        self.timeout_ms = max(500, int(timeout_s * 1000))
        self.info: CameraInfo | None = None
        self._capture: cv2.VideoCapture | None = None
        self._lock = threading.Lock()  # held while a read is in progress
        self._closed = False
        self._index = 0
        self._origin: float | None = None

    def open(self) -> CameraInfo:
        if self.source.kind is SourceKind.FILE:
            path = self.source.path
            if path is None or not path.is_file():
                raise CameraError(f"video file {self.source.display} does not exist")
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.timeout_ms]
        if self.source.live:
            # Only a stream can stall; a file's read fails only at its end (or on a broken
            # frame), so that a slow read on a loaded machine is never taken for the end.
            params += [cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.timeout_ms]
        backend = cv2.CAP_ANY if self.source.kind is SourceKind.DEVICE else cv2.CAP_FFMPEG
        capture = cv2.VideoCapture(self.source.target, backend, params)
        if not capture.isOpened():
            capture.release()
            raise CameraError(f"cannot open camera {self.source.display}")
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if width <= 0 or height <= 0:
            capture.release()
            raise CameraError(f"camera {self.source.display} reports no frame size")
        with self._lock:
            if self._closed:
                capture.release()
                raise CameraError(f"camera {self.source.display} was closed while opening")
            self._capture = capture
        self.info = CameraInfo(width, height, fps if math.isfinite(fps) and fps > 0 else 0.0)
        return self.info

    def read(self) -> CapturedFrame | None:
        """The next frame, or None when the source has none (end of file, stream broken)."""
        with self._lock:
            capture = self._capture
            if capture is None or self._closed:
                return None
            ok, image = capture.read()
            if not ok or image is None:
                return None
            return CapturedFrame(image, self._timestamp(capture))

    def _timestamp(self, capture: cv2.VideoCapture) -> float:
        index = self._index
        self._index += 1
        info = self.info
        if self.source.kind is SourceKind.FILE and info is not None and info.fps > 0:
            return index / info.fps
        if self.source.kind is SourceKind.FILE:  # no declared rate: the container's clock
            return float(capture.get(cv2.CAP_PROP_POS_MSEC) or 0.0) / 1000.0
        now = time.monotonic()
        if self._origin is None:
            self._origin = now
        return now - self._origin

    def reopen(self) -> CameraInfo:
        """Release and open again (a live source that stopped delivering)."""
        with self._lock:
            self._release()
        return self.open()

    def close(self) -> None:
        """Release the camera. Never waits for a read in progress: that read's thread
        releases the camera when it returns (a dead RTSP read can block for seconds)."""
        self._closed = True
        if self._lock.acquire(blocking=False):
            try:
                self._release()
            finally:
                self._lock.release()
        else:
            threading.Thread(target=self._release_after_read, daemon=True).start()

    def _release_after_read(self) -> None:
        with self._lock:
            self._release()

    def _release(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()


def read_image(path: str) -> np.ndarray:
    """A photo as BGR, or CameraError saying why not."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise CameraError(f"cannot read the photo {path}: not an image OpenCV can decode")
    return image
