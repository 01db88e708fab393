"""A decoded video picture kept as its Y'CbCr planes, cropped straight into a model tensor.

A camera's H.264/H.265 picture arrives as Y'CbCr 4:2:0. Converting the whole picture to BGR
and then cropping a 256x256 ROI out of it spends most of the work on pixels the model never
sees. `YuvPicture.to_tensor` instead warps each plane into the crop (the chroma planes
through their own, subsampled geometry) and converts only the crop's pixels, in float, to
RGB. Measured in the lanes benchmark at 1280x720 (2 cores), a lane's decode stage (decoding
and that conversion) fell from 0.052-0.059 to 0.036-0.040 CPU seconds per lane-second, and
the crop itself from 0.70 to 0.46 ms.

The pixels differ slightly from swscale's conversion followed by a crop (no 8-bit RGB picture
in between, chroma interpolated at its sited position instead of repeated): about a level or
two on average, the same size of difference as between two BGR converters (swscale's and
OpenCV's), and keypoints move by as much as they do between those two converters.

Pure numpy/OpenCV, no I/O: `khfsm.vision.media.yuv_picture` builds one from a decoded frame.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TypeAlias

import cv2
import numpy as np


@dataclass(frozen=True, slots=True)
class Colour:
    """How Y'CbCr encodes R'G'B': the luma weights of red and blue (the matrix) and whether
    the samples use the full 0-255 range (JPEG) or the studio range (Y' 16-235, C 16-240)."""

    kr: float
    kb: float
    full_range: bool = False

    def to_rgb(self) -> np.ndarray:
        """The 3x4 affine map from (Y', Cb, Cr, 1) samples to R'G'B' levels (0-255), from the
        matrix's definition (ITU-R BT.601 / BT.709 / BT.2020, section "derivation of colour
        difference signals")."""
        kr, kb = self.kr, self.kb
        kg = 1.0 - kr - kb
        y_gain, c_gain = (1.0, 1.0) if self.full_range else (255.0 / 219.0, 255.0 / 224.0)
        y_black = 0.0 if self.full_range else 16.0
        to_red = c_gain * 2.0 * (1.0 - kr)  # R' - Y' per unit of Cr
        to_blue = c_gain * 2.0 * (1.0 - kb)  # B' - Y' per unit of Cb
        weights = np.array(
            [
                [y_gain, 0.0, to_red],
                [y_gain, -to_blue * kb / kg, -to_red * kr / kg],  # G' = (Y' - kr R' - kb B') / kg
                [y_gain, to_blue, 0.0],
            ]
        )
        offset = -weights @ np.array([y_black, 128.0, 128.0])
        return np.hstack([weights, offset[:, None]])

    @property
    def black(self) -> tuple[float, float, float]:
        """(Y', Cb, Cr) of black: what a zero border is made of."""
        return (0.0 if self.full_range else 16.0, 128.0, 128.0)


BT601 = Colour(kr=0.299, kb=0.114)
BT709 = Colour(kr=0.2126, kb=0.0722)
BT2020 = Colour(kr=0.2627, kb=0.0593)
SMPTE240M = Colour(kr=0.212, kb=0.087)


@dataclass(frozen=True, slots=True)
class YuvPicture:
    """A picture as its three planes (uint8, views of the decoder's buffers are fine).

    `chroma_siting` is where chroma sample (0, 0) lies in luma pixel coordinates: (0, 0.5)
    for MPEG-2/H.264/H.265 4:2:0 (left, between two rows), (0.5, 0.5) for JPEG's 4:2:0 and
    4:2:2 (centred), (0, 0) for co-sited or unsubsampled chroma.
    """

    y: np.ndarray
    cb: np.ndarray
    cr: np.ndarray
    colour: Colour = BT601
    chroma_siting: tuple[float, float] = (0.0, 0.5)

    def __post_init__(self) -> None:
        for plane in (self.y, self.cb, self.cr):
            if plane.dtype != np.uint8 or plane.ndim != 2:
                raise ValueError(
                    f"expected uint8 planes of shape (H, W), got {plane.dtype} {plane.shape}"
                )
        if self.cb.shape != self.cr.shape:
            raise ValueError(f"the chroma planes differ in shape: {self.cb.shape} {self.cr.shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, 3), as the BGR image of the same picture would be."""
        height, width = self.y.shape
        return height, width, 3

    def _chroma_to_luma(self) -> np.ndarray:
        """3x3 map from chroma-plane pixel coordinates to luma-plane ones."""
        height, width = self.y.shape
        chroma_height, chroma_width = self.cb.shape
        step_x = round(width / chroma_width) if chroma_width else 1
        step_y = round(height / chroma_height) if chroma_height else 1
        offset_x = self.chroma_siting[0] if step_x > 1 else 0.0
        offset_y = self.chroma_siting[1] if step_y > 1 else 0.0
        return np.array([[step_x, 0.0, offset_x], [0.0, step_y, offset_y], [0.0, 0.0, 1.0]])

    def to_tensor(
        self,
        matrix: np.ndarray,
        size: int,
        value_range: tuple[float, float],
        border_zero: bool,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """RGB float32 (size, size, 3) in `value_range`: the picture warped by the 2x3 affine
        `matrix` (luma pixel coordinates to tensor coordinates). Outside the picture the
        border is black (`border_zero`) or repeats the edge pixels, plane by plane. Written
        into `out` (a frame of a batch) when given."""
        luma = np.vstack([matrix, [0.0, 0.0, 1.0]])
        chroma = (luma @ self._chroma_to_luma())[:2]
        border = cv2.BORDER_CONSTANT if border_zero else cv2.BORDER_REPLICATE
        planes = [
            cv2.warpAffine(
                plane,
                warp,
                (size, size),
                flags=cv2.INTER_LINEAR,
                borderMode=border,
                borderValue=black,
            )
            for plane, warp, black in zip(
                (self.y, self.cb, self.cr),
                (matrix, chroma, chroma),
                self.colour.black,
                strict=True,
            )
        ]
        lo, hi = value_range
        tensor = cv2.transform(
            cv2.merge(planes).astype(np.float32), _to_range(self.colour, lo, hi), dst=out
        )
        if out is not None and not np.shares_memory(tensor, out):
            out[...] = tensor  # OpenCV could not write there (it never happened: a safeguard)
            tensor = out
        # Converted colours outside the RGB cube are clipped, as every RGB converter does.
        np.clip(tensor, np.float32(min(lo, hi)), np.float32(max(lo, hi)), out=tensor)
        return tensor


@functools.cache
def _to_range(colour: Colour, lo: float, hi: float) -> np.ndarray:
    """`colour.to_rgb()` scaled from levels 0-255 to lo-hi, float32 (made once per colour)."""
    to_range = colour.to_rgb() * ((hi - lo) / 255.0)
    to_range[:, 3] += lo
    shared = to_range.astype(np.float32)
    shared.flags.writeable = False  # one array for every call: nobody may change it
    return shared


# What the pose models accept: a BGR uint8 image (photos, device cameras, MJPEG) or a video
# picture's planes.
Image: TypeAlias = np.ndarray | YuvPicture
