"""The session's evidence video: fragmented MP4, written as the test runs.

Two writers share the file format:

* `PacketRecorder` (cameras that send H.264/H.265: IP cameras, most files): the camera's own
  packets, remuxed without re-encoding. Every camera frame is kept, at the camera's quality,
  on the timeline `khfsm.server.camera.Camera` gives its packets (0 at the first keyframe);
  each `FrameObserved.pts` says which of these frames was assessed.
* `VideoRecorder` (MJPEG webcams, device indexes): the assessed frames, encoded with libx264.

`movflags=frag_keyframe+empty_moov+default_base_moof` writes the header first and then one
self-contained fragment per keyframe, so a file cut short by a crash (or copied while being
written) still decodes up to its last complete fragment, and a browser can play and seek it
when it is served with HTTP Range support. A keyframe every second keeps fragments short.

A fragment is also cut every second between keyframes (`frag_duration`): a camera that sends
a keyframe only every few seconds would otherwise leave that much out of a copy taken mid-write.

For the encoder, frame `k` of the video is assessed frame `k` of the session: its
presentation time is set explicitly to k with time base 1/Fps. Every method here blocks
(encoding, writing, hashing): call them from a worker thread.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from khfsm.errors import KhfsmError
from khfsm.hashing import file_sha256
from khfsm.vision.media import SWS_THREADS

FRAGMENTED_MP4 = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "flush_packets": "1",  # each fragment reaches the file when it closes, not 32 KiB later
}
FRAGMENT_US = 1_000_000  # longest fragment of a remuxed recording
X264_OPTIONS = {
    "preset": "veryfast",
    "tune": "zerolatency",  # no frame delay: what goes in is in the file one fragment later
    "crf": "23",
}


class RecordingError(KhfsmError, RuntimeError):
    """The video cannot be written; the message names the file and the reason."""


class VideoExistsError(RecordingError):
    """The session's video file appeared after its prepare (another server recording the
    same ModelPath): it is left as it is."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"the video {path} already exists; it was not overwritten")
        self.path = path


@dataclass(frozen=True, slots=True)
class Evidence:
    sha256: str
    size: int
    frames: int


def frame_rate(fps: float) -> Fraction:
    # 20 -> 20/1, 12.5 -> 25/2, 29.97 -> 2997/100: exact enough for a time base of 1/Fps.
    return Fraction(fps).limit_denominator(1001)


class _Mp4File:
    """What both writers share: the open container, its one video stream, and how the file
    is closed (hashed) or abandoned. Not thread-safe: drive it from one worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames = 0
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None

    def _create(self, options: dict[str, str]) -> av.container.OutputContainer:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Created exclusively, then opened: FFmpeg would truncate a file already there.
            # Prepare refuses a ModelPath that exists, but servers sharing a media root can
            # each accept the same new one; the second to record must not overwrite the
            # first's evidence.
            with open(self.path, "xb"):
                pass
        except FileExistsError:
            raise VideoExistsError(self.path) from None
        except OSError as error:
            raise RecordingError(f"cannot create the video {self.path}: {error}") from error
        try:
            return av.open(str(self.path), mode="w", format="mp4", options=options)
        except (OSError, av.FFmpegError) as error:
            raise RecordingError(f"cannot create the video {self.path}: {error}") from error

    def _sealed(self, container: av.container.OutputContainer) -> Evidence:
        container.close()
        return Evidence(
            sha256=file_sha256(self.path), size=self.path.stat().st_size, frames=self.frames
        )

    def abort(self) -> None:
        """Close without raising (after an error): whatever fragments were written stay."""
        container, self._container, self._stream = self._container, None, None
        if container is not None:
            # Best effort: the error that led here is the one worth reporting.
            with contextlib.suppress(Exception):
                container.close()

    def _require(self) -> tuple[av.container.OutputContainer, av.video.stream.VideoStream]:
        if self._container is None or self._stream is None:
            raise RecordingError(f"the video {self.path} is not open")
        return self._container, self._stream


class VideoRecorder(_Mp4File):
    """One session's video. Not thread-safe: drive it from one worker thread at a time."""

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        super().__init__(path)
        self.rate = frame_rate(fps)
        # yuv420p needs even dimensions: drop a last odd row/column rather than rescale.
        self.width = max(2, width - width % 2)
        self.height = max(2, height - height % 2)

    def open(self) -> None:
        # a track timescale of the frame rate itself: stored pts are frame indices
        container = self._create(
            {**FRAGMENTED_MP4, "video_track_timescale": str(self.rate.numerator)}
        )
        stream = container.add_stream("libx264", rate=self.rate)
        stream.width = self.width
        stream.height = self.height
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / self.rate
        stream.codec_context.time_base = 1 / self.rate
        stream.codec_context.gop_size = max(1, round(self.rate))  # a keyframe every second
        stream.codec_context.options = {**X264_OPTIONS, "threads": "1"}
        self._container, self._stream = container, stream

    def write(self, index: int, image_bgr: np.ndarray) -> None:
        """Append assessed frame `index` (they arrive in order, from 0)."""
        container, stream = self._require()
        if index != self.frames:
            raise RecordingError(f"frame {index} out of order (expected {self.frames})")
        height, width = image_bgr.shape[:2]
        if (width, height) != (self.width, self.height):
            if width >= self.width and height >= self.height:
                image_bgr = image_bgr[: self.height, : self.width]
            else:  # the camera changed resolution mid-test: keep the video's size
                image_bgr = cv2.resize(image_bgr, (self.width, self.height))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image_bgr), format="bgr24")
        # converted here rather than by the encoder, which would use a pool of threads
        frame = frame.reformat(format="yuv420p", threads=SWS_THREADS)
        frame.pts = index
        frame.time_base = 1 / self.rate
        try:
            for packet in stream.encode(frame):
                container.mux(packet)
        except (OSError, av.FFmpegError) as error:
            raise RecordingError(f"cannot write frame {index} to {self.path}: {error}") from error
        self.frames += 1

    def close(self) -> Evidence:
        """Flush, close and hash the file."""
        container, stream = self._require()
        self._container = self._stream = None
        try:
            for packet in stream.encode(None):
                container.mux(packet)
        except BaseException:
            container.close()
            raise
        return self._sealed(container)


class PacketRecorder(_Mp4File):
    """One session's video from the camera's own packets. Not thread-safe: drive it from one
    worker thread at a time."""

    def __init__(self, path: Path, template: av.video.stream.VideoStream) -> None:
        super().__init__(path)  # frames: packets written (one per camera frame)
        self.template = template  # the camera's stream: codec, size, parameter sets

    def open(self) -> None:
        container = self._create({**FRAGMENTED_MP4, "frag_duration": str(FRAGMENT_US)})
        try:
            stream = container.add_stream_from_template(self.template)
        except (av.FFmpegError, ValueError) as error:
            container.close()
            raise RecordingError(f"cannot create the video {self.path}: {error}") from error
        if self.template.codec_context.name == "hevc":
            stream.codec_tag = "hvc1"  # the tag browsers (Safari, Chromium) play HEVC with
        self._container, self._stream = container, stream

    def write(self, packets: tuple[av.Packet, ...]) -> None:
        """Append the camera's packets (in the order they were demuxed)."""
        container, stream = self._require()
        for packet in packets:
            packet.stream = stream
            try:
                container.mux(packet)
            except (OSError, av.FFmpegError) as error:
                raise RecordingError(f"cannot write to {self.path}: {error}") from error
            self.frames += 1

    def close(self) -> Evidence:
        """Close (writing the last fragment) and hash the file."""
        container, _stream = self._require()
        self._container = self._stream = None
        return self._sealed(container)
