"""A lane's camera. Every method blocks: call them from a worker thread.

Files and network cameras (RTSP, HTTP) are read with PyAV: packets are demuxed once and
decoded here, and each frame comes with the packets it was demuxed with, so a recorder can
write the camera's own H.264/H.265 packets (`khfsm.server.recording.PacketRecorder`) from
the same single read. Local device indexes are read with OpenCV (`DeviceCamera`).

Packets before the first keyframe are dropped (they cannot be decoded), and every packet's
timestamps are renumbered onto the *recording's* timeline: 0 at the first keyframe, and
continuing (one frame interval after the last packet) when a live camera is reopened and
restarts its own clock. So a frame's `pts` is its presentation time in the recording, in
seconds, which is what `FrameObserved.pts` stores.

`timestamp` places each frame on the camera's own timeline, in seconds from its first frame,
for frame selection:

* a file: source frame i is at i / (the container's frame rate), as in `khfsm.assess`, so a
  file used as a camera yields exactly the frames an offline assessment of it would;
* a live source: the moment the frame arrived (monotonic clock). IP cameras restart their
  presentation times on every reconnect and some send none, so the arrival time is the one
  clock every source has.

FFmpeg's capture options (RTSP over TCP) come from `Settings.ffmpeg_capture_options`, set
for the process when a site opens (`khfsm.server.sources.use_ffmpeg_capture_options`), in
OpenCV's `key;value|key;value` form, which both readers understand.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Protocol

import av
import cv2
import numpy as np

from khfsm.errors import KhfsmError
from khfsm.server.paths import CameraSource, SourceKind
from khfsm.vision.media import DecodedPicture, to_bgr
from khfsm.vision.picture import Image

if TYPE_CHECKING:
    from khfsm.server.decoding import DecodePlan

log = logging.getLogger(__name__)

# Codecs whose packets go into an MP4 as they are (no re-encoding): what IP cameras send.
REMUXABLE_CODECS = frozenset({"h264", "hevc"})
FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"


class CameraError(KhfsmError, RuntimeError):
    """The camera cannot be opened or read; the message names it (password redacted)."""


@dataclass(frozen=True, slots=True)
class CameraInfo:
    width: int
    height: int
    fps: float  # the source's nominal frame rate, 0 when it declares none
    codec: str = ""  # FFmpeg's name of the video codec ("h264"), "" when unknown

    @property
    def remuxable(self) -> bool:
        return self.codec in REMUXABLE_CODECS


class CapturedFrame:
    """One camera frame: its picture, its time on the camera's timeline (`timestamp`, seconds
    from the first frame), its presentation time in the recording (`pts`, seconds; None when
    the camera is not remuxed), and the packets demuxed since the previous frame (this
    frame's among them), renumbered onto the recording's timeline: what a remuxing recorder
    writes (empty for device cameras).

    A frame read with `Camera.read(lazy=True)` keeps the decoder's YUV picture and converts it
    only as far as it is used (`for_pose`, `image`), so the camera frames no lane assesses (a
    25 fps camera assessed at 20 fps: one in five) are never converted. Converting blocks:
    call them in a worker thread.
    """

    __slots__ = ("_image", "_picture", "packets", "pts", "timestamp")

    def __init__(
        self,
        image: np.ndarray | av.VideoFrame,
        timestamp: float,
        pts: float | None = None,
        packets: tuple[av.Packet, ...] = (),
    ) -> None:
        self._image: np.ndarray | None = None
        self._picture: DecodedPicture | None = None
        if isinstance(image, np.ndarray):
            self._image = image
        else:
            # H.264/H.265's chroma siting: only remuxed cameras' pictures go to the models as
            # planes, and only those codecs are remuxed.
            self._picture = DecodedPicture(image)
        self.timestamp = timestamp
        self.pts = pts
        self.packets = packets

    @property
    def image(self) -> np.ndarray:
        """BGR uint8."""
        return self.convert()

    def convert(self) -> np.ndarray:
        """The picture as BGR uint8, converted now if it was not yet (blocks)."""
        if self._picture is not None:
            return self._picture.bgr()  # converted once, kept there
        assert self._image is not None
        return self._image

    def for_pose(self) -> Image:
        """What the pose models take: the picture's planes where they can (blocks only for a
        GPU decoder's NV12), else the BGR image."""
        if self._picture is None:
            assert self._image is not None
            return self._image
        return self._picture.for_pose()


class CameraReader(Protocol):
    source: CameraSource
    info: CameraInfo | None
    decoder: str  # where the open stream is decoded: "cpu" or a GPU device type

    def open(self) -> CameraInfo: ...
    def read(self, lazy: bool = False) -> CapturedFrame | None: ...
    def tail(self, until_s: float) -> tuple[av.Packet, ...]: ...
    def reopen(self) -> CameraInfo: ...
    def close(self) -> None: ...

    @property
    def stream(self) -> av.video.stream.VideoStream | None: ...


def open_camera(
    source: CameraSource, timeout_s: float = 5.0, decode: DecodePlan | None = None
) -> CameraReader:
    """The reader for `source` (not yet opened); `decode`: where its video is decoded
    (default the CPU; device cameras always are)."""
    if source.kind is SourceKind.DEVICE:
        return DeviceCamera(source, timeout_s)
    return Camera(source, timeout_s, decode)


def capture_options(text: str | None = None) -> dict[str, str]:
    """OpenCV's `key;value|key;value` capture options as FFmpeg options for PyAV."""
    text = os.environ.get(FFMPEG_OPTIONS_ENV, "") if text is None else text
    options: dict[str, str] = {}
    for item in text.split("|"):
        key, _, value = item.partition(";")
        if key.strip():
            options[key.strip()] = value.strip()
    return options


class _Lifecycle:
    """Close from any thread without waiting for a read in progress: that read's thread
    releases the source when it returns (a dead RTSP read can block for seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held while a read is in progress
        self._closed = False

    def close(self) -> None:
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
        raise NotImplementedError


class Camera(_Lifecycle):
    """A file or network camera read with PyAV. `close` may be called from another thread."""

    def __init__(
        self, source: CameraSource, timeout_s: float = 5.0, decode: DecodePlan | None = None
    ) -> None:
        super().__init__()
        self.source = source
        self.timeout_s = max(0.5, timeout_s)
        self.decode = decode
        self.decoder = "cpu"  # where the open stream is decoded: "cpu" or the GPU's device
        self.info: CameraInfo | None = None
        self.broken_packets = 0  # packets the decoder refused (logged, skipped)
        self._container: av.container.InputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._packets: Iterator[av.Packet] | None = None
        self._decoded: deque[tuple[av.VideoFrame, Fraction]] = deque()
        self._pending: list[av.Packet] = []  # demuxed, not yet handed out with a frame
        self._ended = False  # the demuxer said end of file; the decoder has been drained
        self._index = 0
        self._origin: float | None = None
        # The recording's timeline: seconds of the last packet written, and this stream's
        # offset onto the timeline (set at its first keyframe).
        self._last_dts_s: float | None = None
        self._offset: int | None = None
        self._started = False
        self._decoder_settled = True  # False until a hardware-decoded stream shows a picture

    @property
    def stream(self) -> av.video.stream.VideoStream | None:
        return self._stream

    def open(self) -> CameraInfo:
        if self.source.kind is SourceKind.FILE:
            path = self.source.path
            if path is None or not path.is_file():
                raise CameraError(f"video file {self.source.display} does not exist")
        container = self._open_container()
        if not container.streams.video:
            container.close()
            raise CameraError(f"camera {self.source.display} sends no video")
        stream = container.streams.video[0]
        # One decoding thread per lane: on a small machine the cores are better spent on
        # other lanes and on inference than on FFmpeg's frame threads (which also add a
        # frame of latency per thread).
        stream.codec_context.thread_count = 1
        width, height = stream.codec_context.width, stream.codec_context.height
        if width <= 0 or height <= 0:
            container.close()
            raise CameraError(f"camera {self.source.display} reports no frame size")
        decoder = "cpu"
        if self.decode is not None and self.decode.device and stream.codec_context.is_hwaccel:
            decoder = self.decode.device
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        with self._lock:
            if self._closed:
                container.close()
                raise CameraError(f"camera {self.source.display} was closed while opening")
            self._container, self._stream = container, stream
            self.decoder = decoder
            self._decoder_settled = decoder == "cpu"
            self._packets = container.demux(stream)
            self._decoded.clear()
            self._pending.clear()
            self._ended = False
            self._started = False  # until this stream's first keyframe
            self._offset = None
        codec = stream.codec_context.name
        self.info = CameraInfo(width, height, fps if math.isfinite(fps) and fps > 0 else 0.0, codec)
        return self.info

    def _open_container(self) -> av.container.InputContainer:
        options = {} if self.source.kind is SourceKind.FILE else capture_options()
        hwaccel = self.decode.hwaccel() if self.decode is not None else None
        while True:
            try:
                return av.open(
                    str(self.source.target),
                    options=options,
                    timeout=(self.timeout_s, self.timeout_s),
                    hwaccel=hwaccel,
                )
            except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
                # The camera's own fault (unreachable, not a video) unless the GPU's decoder
                # is what failed: the device worked when the site started, but it may have
                # failed since (its driver, its memory). Asking it again tells them apart
                # without a second wait on a dead camera.
                gpu_failure = None
                if hwaccel is not None and self.decode is not None:
                    gpu_failure = self.decode.failure()
                if gpu_failure is None:
                    raise CameraError(
                        f"cannot open camera {self.source.display}: {error}"
                    ) from None
                log.warning(
                    "camera %s: the GPU's video decoder failed (%s); decoding on the CPU",
                    self.source.display,
                    gpu_failure,
                )
                hwaccel = None

    def read(self, lazy: bool = False) -> CapturedFrame | None:
        """The next frame, or None when the source has none (end of file, stream broken).
        `lazy`: converted only when used (`for_pose`, `image`: see CapturedFrame)."""
        with self._lock:
            if self._closed or self._container is None:
                return None
            while not self._decoded:
                if not self._demux_one():
                    return None
            frame, time_base = self._decoded.popleft()
            image = frame if lazy else to_bgr(frame)
            pts = float(frame.pts * time_base) if frame.pts is not None else None
            packets = self._take_packets_until(frame.pts)
            timestamp = self._timestamp(pts)
            if self.info is None or not self.info.remuxable:
                return CapturedFrame(image, timestamp)  # recorded by encoding instead
            return CapturedFrame(image, timestamp, pts, packets)

    def tail(self, until_s: float) -> tuple[av.Packet, ...]:
        """The packets still to record, up to about `until_s` (recording seconds), without a
        gap: decoding goes on until a frame at or after `until_s` is handed out, and only the
        packets handed out with frames are recorded (see `_take_packets_until`); the rest,
        demuxed ahead of their time, are left out. Ends early when the source does."""
        with self._lock:
            out: list[av.Packet] = []
            while not self._closed and self._container is not None:
                while self._decoded:
                    frame, time_base = self._decoded.popleft()
                    out.extend(self._take_packets_until(frame.pts))
                    shown = float(frame.pts * time_base) if frame.pts is not None else until_s
                    if shown >= until_s:
                        return tuple(out)
                if not self._demux_one():
                    break
            # The source ended or broke: packets still held back belong to frames that never
            # decoded (or would follow a gap); the recording ends with the last whole frame.
            self._pending = []
            return tuple(out)

    def _take_packets_until(self, pts: int | None) -> tuple[av.Packet, ...]:
        """The pending packets, in demux order, up to the first one shown after `pts`.

        With B-frames a later frame is demuxed (and decoded) before earlier ones: a recording
        that ended right after it would lack the frames in between. Holding it back until a
        frame at or after its time is handed out keeps every recording gap-free.
        """
        count = 0
        for packet in self._pending:
            if pts is not None and packet.pts is not None and packet.pts > pts:
                break
            count += 1
        taken, self._pending = tuple(self._pending[:count]), self._pending[count:]
        return taken

    def _demux_one(self) -> bool:
        """Demux and decode one packet; False when the source has nothing more."""
        assert self._packets is not None and self._stream is not None
        if self._ended:
            return False
        try:
            packet = next(self._packets)
        except StopIteration:
            packet = None
        except (av.FFmpegError, OSError) as error:
            log.info("camera %s: reading stopped: %s", self.source.display, error)
            return False
        decoder = self._stream.codec_context
        if packet is None or packet.size == 0:  # end of file: drain the decoder
            self._ended = True
            try:
                frames = decoder.decode(None)
            except av.FFmpegError:
                return False
            time_base = self._stream.time_base or Fraction(1, 90000)
            self._decoded.extend((f, time_base) for f in frames)
            return bool(self._decoded)
        if not self._started:
            if not packet.is_keyframe:
                return True  # undecodable before the first keyframe: not recorded either
            self._started = True
        self._retime(packet)
        self._pending.append(packet)
        try:
            frames = decoder.decode(packet)
        except av.FFmpegError as error:
            # A broken packet: the camera's evidence keeps it, the assessment skips it.
            self.broken_packets += 1
            log.warning("camera %s: a packet did not decode: %s", self.source.display, error)
            return True
        time_base = packet.time_base or self._stream.time_base or Fraction(1, 90000)
        self._decoded.extend((f, time_base) for f in frames)
        if frames and not self._decoder_settled:
            self._settle_decoder(frames[0].format.name)
        return True

    def _settle_decoder(self, picture_format: str) -> None:
        """Where the first picture was really decoded: opening asks for the GPU, but FFmpeg
        picks the decoder at the stream's first keyframe and falls back to software for a
        stream the GPU cannot decode; the lane's figures must say which it got."""
        self._decoder_settled = True
        assert self.decode is not None
        if not self.decode.decoded_on_device(picture_format):
            log.warning(
                "camera %s: the GPU's video decoder cannot decode this stream (%s, %s); "
                "decoding on the CPU",
                self.source.display,
                self.info.codec if self.info else "?",
                picture_format,
            )
            self.decoder = "cpu"

    def _retime(self, packet: av.Packet) -> None:
        """Renumber `packet` onto the recording's timeline: the stream's first timed packet
        goes to 0, or one frame after the last packet when a reopened camera restarted its
        clock; an untimed packet (some RTSP cameras send the first keyframe so) one frame
        after the last; and decode times always rise, as the MP4 muxer requires."""
        time_base = packet.time_base
        assert time_base is not None
        step_s = 1.0 / self.info.fps if self.info and self.info.fps > 0 else 0.04
        ts = packet.dts if packet.dts is not None else packet.pts
        if ts is None:
            at_s = 0.0 if self._last_dts_s is None else self._last_dts_s + step_s
            packet.pts = packet.dts = round(at_s / time_base)
            self._last_dts_s = at_s
            return
        if self._offset is None:
            target_s = 0.0 if self._last_dts_s is None else self._last_dts_s + step_s
            self._offset = ts - round(target_s / time_base)
        if packet.dts is not None:
            packet.dts -= self._offset
        if packet.pts is not None:
            packet.pts -= self._offset
        seconds = float((ts - self._offset) * time_base)
        if self._last_dts_s is not None and seconds <= self._last_dts_s:
            # Repeated or backward timestamps (a camera's glitch): shift this stream on.
            shift = round((self._last_dts_s - seconds) / time_base) + 1
            self._offset -= shift
            packet.dts = None if packet.dts is None else packet.dts + shift
            packet.pts = None if packet.pts is None else packet.pts + shift
            seconds = float((ts - self._offset) * time_base)
        self._last_dts_s = seconds

    def _timestamp(self, pts: float | None) -> float:
        index = self._index
        self._index += 1
        info = self.info
        if self.source.kind is SourceKind.FILE and info is not None and info.fps > 0:
            return index / info.fps
        if self.source.kind is SourceKind.FILE:  # no declared rate: the container's clock
            return pts or 0.0
        now = time.monotonic()
        if self._origin is None:
            self._origin = now
        return now - self._origin

    def reopen(self) -> CameraInfo:
        """Release and open again (a live source that stopped delivering)."""
        with self._lock:
            self._release()
        return self.open()

    def _release(self) -> None:
        container, self._container, self._stream, self._packets = self._container, None, None, None
        if container is not None:
            container.close()


class DeviceCamera(_Lifecycle):
    """A local camera by index, read with OpenCV; its frames are encoded by the recorder."""

    def __init__(self, source: CameraSource, timeout_s: float = 5.0) -> None:
        super().__init__()
        self.source = source
        self.timeout_ms = max(500, int(timeout_s * 1000))
        self.decoder = "cpu"  # OpenCV reads local devices in software
        self.info: CameraInfo | None = None
        self._capture: cv2.VideoCapture | None = None
        self._origin: float | None = None

    @property
    def stream(self) -> av.video.stream.VideoStream | None:
        return None

    def open(self) -> CameraInfo:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.timeout_ms,
        ]  # fmt: skip
        capture = cv2.VideoCapture(self.source.target, cv2.CAP_ANY, params)
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

    def read(self, lazy: bool = False) -> CapturedFrame | None:
        with self._lock:
            capture = self._capture
            if capture is None or self._closed:
                return None
            ok, image = capture.read()
            if not ok or image is None:
                return None
            now = time.monotonic()
            if self._origin is None:
                self._origin = now
            return CapturedFrame(image, now - self._origin)

    def tail(self, until_s: float) -> tuple[av.Packet, ...]:
        return ()  # nothing to remux

    def reopen(self) -> CameraInfo:
        with self._lock:
            self._release()
        return self.open()

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
