"""Reading photos and videos, writing annotated videos (OpenCV for images, PyAV for video).

Kept apart from the models so that the CLI and tests share one definition of "unreadable
input" and turn it into a clear message instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from khfsm.errors import KhfsmError

# Colour conversion (swscale) in the calling thread. PyAV's default (threads=0) starts a pool
# of slice threads for every picture: measured at 720p, 0.65-1.18 ms of CPU a frame against
# 0.36-0.50 ms in one thread (360p: 0.35-0.63 against 0.11-0.17), with identical pixels, and
# those threads run beside other lanes' inference instead of inside this frame's reader.
SWS_THREADS = 1

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})


class MediaError(KhfsmError, ValueError):
    """An input cannot be read or an output cannot be written (message says which and why)."""


def read_image(path: Path) -> np.ndarray:
    """A photo as BGR uint8."""
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(f"{path}: not a readable image")
    return image


def write_image(path: Path, image: np.ndarray) -> None:
    try:
        ok = cv2.imwrite(str(path), image)
    except cv2.error as e:
        raise MediaError(f"{path}: cannot write image ({e.msg.strip()})") from e
    if not ok:
        raise MediaError(f"{path}: cannot write image (directory missing or unknown extension?)")


def looks_like_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


@dataclass(frozen=True, slots=True)
class VideoInfo:
    frame_count: int  # 0 when the container does not say
    fps: Fraction
    width: int
    height: int


@contextmanager
def open_video(path: Path) -> Iterator[tuple[VideoInfo, Iterator[np.ndarray]]]:
    """(info, BGR frames) of the first video stream; the container is closed on exit."""
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise MediaError(f"{path}: not a readable image or video ({e})") from e
    try:
        if not container.streams.video:
            raise MediaError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate or Fraction(25)
        info = VideoInfo(
            frame_count=stream.frames or 0,
            fps=Fraction(fps),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
        )
        yield info, _frames(container, path)
    finally:
        container.close()


def _frames(container: av.container.InputContainer, path: Path) -> Iterator[np.ndarray]:
    try:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="bgr24", threads=SWS_THREADS)
    except av.error.FFmpegError as e:
        raise MediaError(f"{path}: video decoding failed ({e})") from e


class VideoWriter:
    """H.264 (or MPEG-4 Part 2 when libx264 is missing) MP4 writer for BGR frames."""

    def __init__(self, path: Path, fps: Fraction, width: int, height: int) -> None:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        try:
            self._container = av.open(str(path), mode="w")
        except (av.error.FFmpegError, OSError) as e:
            raise MediaError(f"{path}: cannot write video ({e})") from e
        stream = self._container.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        self._stream = stream
        # yuv420p needs even dimensions; drop a last odd row/column rather than rescale.
        self._width, self._height = width - width % 2, height - height % 2
        self._stream.width, self._stream.height = self._width, self._height
        self._stream.pix_fmt = "yuv420p"

    def write(self, frame_bgr: np.ndarray) -> None:
        cropped = np.ascontiguousarray(frame_bgr[: self._height, : self._width])
        frame = av.VideoFrame.from_ndarray(cropped, format="bgr24")
        # converted here rather than by the encoder, which would use a pool of threads
        frame = frame.reformat(format="yuv420p", threads=SWS_THREADS)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
