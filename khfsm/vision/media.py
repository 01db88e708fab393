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
from khfsm.vision.picture import BT601, BT709, BT2020, SMPTE240M, Colour, Image, YuvPicture

# Colour conversion (swscale) in the calling thread. PyAV's default (threads=0) starts a pool
# of slice threads for every picture: measured at 720p, 0.65-1.18 ms of CPU a frame against
# 0.36-0.50 ms in one thread (360p: 0.35-0.63 against 0.11-0.17), with identical pixels, and
# those threads run beside other lanes' inference instead of inside this frame's reader.
SWS_THREADS = 1

# The decoder's 8-bit planar Y'CbCr formats the pose models can take as planes (NV12, a GPU
# decoder's, is rearranged into planes first, which is exact); the "j" ones are full range
# (JPEG, and the H.264 of many IP cameras). Anything else (10-bit, RGB) is converted to BGR.
# Where chroma is sited depends on the codec, which a frame does not carry: JPEG centres it
# between luma samples, MPEG-2/H.264/H.265 put it on the left one.
JPEG_CODECS = frozenset({"mjpeg", "jpegls"})
_PLANAR_YUV = frozenset({"yuv420p", "yuv422p", "yuv444p", "yuvj420p", "yuvj422p", "yuvj444p"})
# FFmpeg's AVColorSpace / AVColorRange codes as a frame carries them; an untagged picture is
# BT.601, as swscale (and so every BGR conversion here) reads it.
_MATRICES = {1: BT709, 7: SMPTE240M, 9: BT2020, 10: BT2020}
_FULL_RANGE = 2


def yuv_picture(frame: av.VideoFrame, centred_chroma: bool = False) -> YuvPicture | None:
    """The decoded `frame` as planes for the pose models (views of its buffers, no copy), or
    None for a pixel format they are not taken from (convert that one to BGR).
    `centred_chroma`: decoded by a JPEG codec (see `JPEG_CODECS`)."""
    frame = _planar(frame)
    name = frame.format.name
    if name not in _PLANAR_YUV:
        return None
    y, cb, cr = (
        np.frombuffer(memoryview(plane), np.uint8, count=plane.line_size * plane.height).reshape(
            plane.height, plane.line_size
        )[:, : plane.width]
        for plane in frame.planes
    )
    matrix = _MATRICES.get(int(frame.colorspace), BT601)
    full_range = name.startswith("yuvj") or int(frame.color_range) == _FULL_RANGE
    colour = Colour(matrix.kr, matrix.kb, full_range=full_range)
    return YuvPicture(y, cb, cr, colour, chroma_siting=(0.5, 0.5) if centred_chroma else (0.0, 0.5))


def to_bgr(picture: av.VideoFrame) -> np.ndarray:
    """A decoded picture as BGR uint8, the same pixels wherever it was decoded: a GPU decoder
    hands out NV12, the software decoder YUV 4:2:0 planes of the same samples, and FFmpeg's
    NV12-to-BGR path interpolates chroma differently (up to 49 levels apart at colour edges),
    so NV12 is first rearranged into planes (exact) and converted as the CPU's would be.

    In one thread (`SWS_THREADS`, which says why)."""
    return _planar(picture).to_ndarray(format="bgr24", threads=SWS_THREADS)


def _planar(picture: av.VideoFrame) -> av.VideoFrame:
    """A GPU decoder's NV12 rearranged into the software decoder's planes (exact); any
    other picture as it is."""
    if picture.format.name == "nv12":
        return picture.reformat(format="yuv420p", threads=SWS_THREADS)
    return picture


class DecodedPicture:
    """A decoded video frame, converted only as far as each use needs: `for_pose()` hands the
    pose models the picture's own planes (no conversion of the whole picture, see
    `khfsm.vision.picture`), `bgr()` converts the whole picture for drawing, face checks and
    re-encoding. Both are kept once made. Converting blocks: call them in a worker thread."""

    __slots__ = ("_bgr", "_centred_chroma", "_frame", "_planes")

    def __init__(self, frame: av.VideoFrame, centred_chroma: bool = False) -> None:
        self._frame = frame
        self._centred_chroma = centred_chroma  # see yuv_picture
        self._bgr: np.ndarray | None = None
        self._planes: Image | None = None

    def bgr(self) -> np.ndarray:
        if self._bgr is None:
            self._bgr = to_bgr(self._frame)
        return self._bgr

    def for_pose(self) -> Image:
        """The planes where the models take them, else the BGR image: the same pixels for the
        same picture, whoever asks (the live lane, `khfsm pose` on its recording)."""
        if self._planes is None:
            self._planes = yuv_picture(self._frame, self._centred_chroma)
            if self._planes is None:
                self._planes = self.bgr()
        return self._planes


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
def open_video(path: Path) -> Iterator[tuple[VideoInfo, Iterator[DecodedPicture]]]:
    """(info, decoded pictures) of the first video stream; the container is closed on exit."""
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


def _frames(container: av.container.InputContainer, path: Path) -> Iterator[DecodedPicture]:
    try:
        stream = container.streams.video[0]
        centred_chroma = stream.codec_context.name in JPEG_CODECS
        for frame in container.decode(stream):
            yield DecodedPicture(frame, centred_chroma)
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
