"""A video picture cropped into a model tensor from its own planes (`khfsm.vision.picture`):
the standard's colours, the chroma where the codec sites it, black borders, the formats taken,
and the same tensor (to a level or two) as converting the whole picture to BGR first."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from khfsm.vision.geometry import Roi, crop_to_tensor
from khfsm.vision.media import DecodedPicture, open_video, to_bgr, yuv_picture
from khfsm.vision.picture import BT601, BT709, Colour, YuvPicture

CLIP = "pushup_01_div_perfect_pushup_2.mp4"
BT709_CODE = 1  # FFmpeg's AVCOL_SPC_BT709


def uniform(y: int, cb: int, cr: int, colour: Colour = BT601, size: int = 64) -> YuvPicture:
    half = size // 2
    return YuvPicture(
        np.full((size, size), y, np.uint8),
        np.full((half, half), cb, np.uint8),
        np.full((half, half), cr, np.uint8),
        colour,
    )


def tensor(picture: YuvPicture, *, lo: float = 0.0, border_zero: bool = False) -> np.ndarray:
    out, _ = crop_to_tensor(
        picture, None, 32, keep_aspect_ratio=True, value_range=(lo, 1.0), border_zero=border_zero
    )
    return out


@pytest.mark.parametrize(
    ("samples", "colour", "rgb"),
    [
        # Studio range: black and white at 16 and 235, no colour at 128.
        ((16, 128, 128), BT601, (0, 0, 0)),
        ((235, 128, 128), BT601, (255, 255, 255)),
        ((126, 128, 128), BT601, (127.7, 127.7, 127.7)),
        # The primaries as each matrix codes them (Y' = 16 + 219 kr, Cr = 128 + 112, ...).
        ((81.48, 90.26, 240), BT601, (255, 0, 0)),
        ((62.56, 101.99, 240), BT709, (255, 0, 0)),
        ((172.63, 41.67, 26.27), BT709, (0, 255, 0)),
        # Full range (JPEG): black and white at 0 and 255.
        ((0, 128, 128), Colour(BT601.kr, BT601.kb, full_range=True), (0, 0, 0)),
        ((255, 128, 128), Colour(BT601.kr, BT601.kb, full_range=True), (255, 255, 255)),
    ],
)
def test_colours_are_the_standards(
    samples: tuple[float, float, float], colour: Colour, rgb: tuple[float, float, float]
) -> None:
    y, cb, cr = (round(s) for s in samples)
    out = tensor(uniform(y, cb, cr, colour)) * 255
    # Samples are whole numbers: the primaries' rounded codes land within a few levels.
    assert np.allclose(out[16, 16], rgb, atol=2.5), out[16, 16]
    assert np.ptp(out.reshape(-1, 3), axis=0).max() < 1e-3  # uniform in, uniform out


def test_out_of_gamut_samples_clip_to_the_value_range() -> None:
    out = tensor(uniform(235, 255, 255), lo=-1.0)  # far beyond red and blue
    assert out.max() == 1.0 and out.min() >= -1.0


def test_a_zero_border_is_black_in_the_value_range() -> None:
    """The detector's letterbox: a wide picture padded top and bottom with black."""
    wide = YuvPicture(
        np.full((32, 64), 200, np.uint8),
        np.full((16, 32), 90, np.uint8),
        np.full((16, 32), 200, np.uint8),
    )
    out = tensor(wide, lo=-1.0, border_zero=True)
    assert np.allclose(out[:6], -1.0, atol=1e-6)  # a quarter is padding
    assert np.allclose(out[-6:], -1.0, atol=1e-6)
    assert (out[16] > -0.9).any()


@pytest.mark.parametrize(("siting", "offset"), [((0.0, 0.5), 0.0), ((0.5, 0.5), 0.5)])
def test_chroma_is_sampled_where_the_codec_sites_it(
    siting: tuple[float, float], offset: float
) -> None:
    """Cb rising by 8 per chroma column is, in luma pixels, Cb = 60 + 4 (x - offset), where
    the offset is where chroma sample 0 lies (H.264: on luma column 0; JPEG: between 0 and 1).
    Half a pixel is 2 levels here, more than the half level the warped plane is rounded to."""
    size = 32
    columns = np.arange(size // 2, dtype=np.float64)
    cb = np.tile(60 + 8 * columns, (size // 2, 1)).astype(np.uint8)
    picture = YuvPicture(
        np.full((size, size), 126, np.uint8), cb, np.full_like(cb, 128), chroma_siting=siting
    )
    out, _ = crop_to_tensor(
        picture, None, size, keep_aspect_ratio=True, value_range=(0.0, 255.0), border_zero=True
    )
    # Blue = Y' part + 2 (1 - kb) (255 / 224) (Cb - 128) for the studio-range BT.601 matrix.
    y_part = (126 - 16) * 255 / 219
    recovered_cb = (out[:, :, 2] - y_part) / (2 * (1 - BT601.kb) * 255 / 224) + 128
    x = np.arange(size, dtype=np.float64)
    inside = slice(2, size - 2)  # away from the edges, where the zero border blends in
    assert np.allclose(recovered_cb[10, inside], (60 + 4 * (x - offset))[inside], atol=0.51)


def test_planes_give_the_tensor_of_the_converted_picture(videos: Path) -> None:
    """Against swscale's BGR of the same picture, cropped the old way: the difference is the
    8-bit rounding and the chroma interpolation in between, a level or two, never a swap of
    channels, a wrong matrix or a shifted crop (each tens of levels)."""
    with av.open(str(videos / CLIP)) as container:
        frame = next(container.decode(video=0))
    planes, bgr = yuv_picture(frame), to_bgr(frame)
    assert planes is not None and planes.shape == bgr.shape
    roi = Roi(0.45, 0.55, 0.5, 0.5 * bgr.shape[1] / bgr.shape[0], rotation=0.3)
    for area in (roi, None):  # the landmark model's crop, the detector's letterboxed frame
        a, lb_a = crop_to_tensor(
            planes, area, 256, keep_aspect_ratio=True, value_range=(0, 1), border_zero=True
        )
        b, lb_b = crop_to_tensor(
            bgr, area, 256, keep_aspect_ratio=True, value_range=(0, 1), border_zero=True
        )
        assert lb_a == lb_b
        levels = np.abs(a - b) * 255
        assert levels.mean() < 2.0 and np.percentile(levels, 99) < 8.0, (
            levels.mean(),
            np.percentile(levels, 99),
        )


def test_a_crop_written_into_a_batch_is_the_crop_made_alone(videos: Path) -> None:
    """`crop_to_tensor(out=...)` (a GPU batch's frames, cropped straight into the batch) gives
    bit for bit the tensor made alone, from planes and from BGR, and writes it there."""
    with av.open(str(videos / CLIP)) as container:
        frame = next(container.decode(video=0))
    planes, bgr = yuv_picture(frame), to_bgr(frame)
    assert planes is not None
    roi = Roi(0.45, 0.55, 0.5, 0.5 * bgr.shape[1] / bgr.shape[0], rotation=0.3)
    batch = np.full((4, 256, 256, 3), np.nan, np.float32)
    for k, (image, area, border_zero) in enumerate(
        [(planes, roi, False), (planes, None, True), (bgr, roi, False), (bgr, None, True)]
    ):
        options = {"keep_aspect_ratio": True, "value_range": (-1.0, 1.0)}
        alone, lb_alone = crop_to_tensor(image, area, 256, border_zero=border_zero, **options)
        into, lb_into = crop_to_tensor(
            image, area, 256, border_zero=border_zero, out=batch[k], **options
        )
        assert lb_alone == lb_into
        assert np.shares_memory(into, batch)
        assert alone.tobytes() == batch[k].tobytes(), f"crop {k} differs in the batch"


def encoded(
    path: Path, pix_fmt: str, colorspace: int | None = None, codec: str = "libx264"
) -> Path:
    """A few frames of a colour gradient, encoded with this pixel format (and tag)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        if colorspace is not None:
            stream.codec_context.colorspace = colorspace
        gradient = np.zeros((48, 64, 3), np.uint8)
        gradient[..., 0] = np.arange(64) * 4
        gradient[..., 2] = np.arange(48)[:, None] * 5
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(gradient, format="bgr24").reformat(format=pix_fmt)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def first_picture(path: Path) -> av.VideoFrame:
    with av.open(str(path)) as container:
        return next(container.decode(video=0))


def test_decoded_formats_the_models_take_as_planes(tmp_path: Path) -> None:
    h264 = first_picture(encoded(tmp_path / "a.mp4", "yuv420p"))
    planes = yuv_picture(h264)
    assert planes is not None
    assert planes.colour == BT601 and planes.chroma_siting == (0.0, 0.5)
    assert planes.y.shape == (48, 64) and planes.cb.shape == (24, 32)
    # A GPU decoder's NV12 gives the very same planes.
    nv12 = yuv_picture(h264.reformat(format="nv12"))
    assert nv12 is not None
    for a, b in zip((nv12.y, nv12.cb, nv12.cr), (planes.y, planes.cb, planes.cr), strict=True):
        assert np.array_equal(a, b)
    tagged = yuv_picture(first_picture(encoded(tmp_path / "b.mp4", "yuv420p", BT709_CODE)))
    assert tagged is not None and tagged.colour == BT709
    # Full range, from the "j" format: MJPEG, and the H.264 of many IP cameras.
    mjpeg = encoded(tmp_path / "c.avi", "yuvj422p", codec="mjpeg")
    jpeg = yuv_picture(first_picture(mjpeg), centred_chroma=True)
    assert jpeg is not None and jpeg.colour.full_range and jpeg.chroma_siting == (0.5, 0.5)
    assert jpeg.cb.shape == (48, 32)
    ip_camera = yuv_picture(first_picture(encoded(tmp_path / "d.mp4", "yuvj420p")))
    assert ip_camera is not None and ip_camera.colour.full_range
    assert ip_camera.chroma_siting == (0.0, 0.5)
    # A video read for `khfsm pose` knows its codec, and so where its chroma is.
    for path, siting in ((mjpeg, (0.5, 0.5)), (tmp_path / "d.mp4", (0.0, 0.5))):
        with open_video(path) as (_, pictures):
            planes = next(pictures).for_pose()
            assert isinstance(planes, YuvPicture) and planes.chroma_siting == siting


def test_other_formats_are_converted_to_bgr(tmp_path: Path) -> None:
    picture = first_picture(encoded(tmp_path / "a.mp4", "yuv420p"))
    for other in ("yuv420p10le", "rgb24", "gray"):
        converted = picture.reformat(format=other)
        assert yuv_picture(converted) is None
        decoded = DecodedPicture(converted)
        image = decoded.for_pose()
        assert isinstance(image, np.ndarray) and image.shape == (48, 64, 3)
        assert image is decoded.bgr()  # converted once, kept


def test_bad_planes_are_refused() -> None:
    with pytest.raises(ValueError, match="uint8 planes"):
        YuvPicture(
            np.zeros((4, 4), np.float32), np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8)
        )
    with pytest.raises(ValueError, match="chroma planes differ"):
        YuvPicture(
            np.zeros((4, 4), np.uint8), np.zeros((2, 2), np.uint8), np.zeros((2, 4), np.uint8)
        )


def test_a_picture_keeps_its_planes_after_the_decoder_moves_on(videos: Path) -> None:
    """The planes are views of the decoder's buffers: they must stay valid as it decodes on."""
    kept = []
    with av.open(str(videos / CLIP)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            planes = yuv_picture(frame)
            assert planes is not None
            kept.append((planes, planes.y.copy(), planes.cr.copy()))
            if index == 40:
                break
    del frame
    assert all(np.array_equal(p.y, y) and np.array_equal(p.cr, cr) for p, y, cr in kept)
    assert cv2.absdiff(kept[0][0].y, kept[40][0].y).any()  # and they are different pictures
