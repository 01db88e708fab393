"""Where cameras are decoded (`khfsm.server.decoding`): the choice, and that a camera asked
to decode on the GPU gives exactly the CPU's pictures, times and packets, whether the GPU's
decoder works (a CUDA machine) or not (this one: the camera falls back to software)."""

from __future__ import annotations

import ctypes
import logging
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from av.codec.hwaccel import hwdevices_available

import khfsm
from khfsm.server.camera import Camera, CameraError
from khfsm.server.decoding import (
    DecodePlan,
    choose_decoder,
    cuda_decoder_failure,
    share_primary_context_with_ffmpeg,
)
from khfsm.server.paths import CameraSource, SourceKind
from khfsm.settings import Settings
from khfsm.vision.media import to_bgr
from tests.server.conftest import CLIP


def file_source(path: Path) -> CameraSource:
    return CameraSource(SourceKind.FILE, str(path), str(path))


def test_cameras_are_decoded_on_the_cpu_when_asked_or_when_inference_runs_there() -> None:
    assert choose_decoder("cpu", inference_on_gpu=True) == DecodePlan(
        None, "CPU decoding requested"
    )
    assert choose_decoder("auto", inference_on_gpu=False) == DecodePlan(
        None, "inference runs on the CPU"
    )
    assert choose_decoder("auto", inference_on_gpu=False).hwaccel() is None
    # measured on a GPU machine: its cores decode faster than NVDEC's copies (decoding.py)
    assert choose_decoder("auto", inference_on_gpu=True) == DecodePlan(
        None, "auto: the CPU's decoding measured faster than NVDEC's"
    )
    with pytest.raises(ValueError, match="decoder must be one of"):
        choose_decoder("nvdec", inference_on_gpu=True)


def test_the_gpu_is_chosen_only_when_its_decoder_opens_on_this_machine() -> None:
    plan = choose_decoder("cuda", inference_on_gpu=True)
    if "cuda" not in hwdevices_available():
        assert plan == DecodePlan(None, "this PyAV's FFmpeg has no CUDA hwaccel")
        return
    failure = cuda_decoder_failure()
    if failure is None:  # a CUDA machine
        assert plan == DecodePlan("cuda", "CUDA decoding requested")
        assert plan.hwaccel() is not None
    else:  # no GPU or no driver: said once, with FFmpeg's reason
        assert plan.device is None
        assert plan.reason == f"the CUDA video decoder cannot be opened ({failure})"


def has_nvidia_driver() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def test_the_gpus_context_is_made_shareable_with_ffmpeg_or_says_why_not() -> None:
    why_not = share_primary_context_with_ffmpeg()
    if not has_nvidia_driver():  # this machine: said so, nothing raised
        assert why_not is not None and why_not.startswith("no NVIDIA driver (libcuda.so.1")
        return
    # a GPU machine, before any context exists in this process, or one made earlier
    assert why_not is None or "CUDA error" in why_not


def test_a_camera_decoded_on_the_gpu_gives_the_cpus_frames(
    videos: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The forced plan runs the GPU path on a CUDA machine and the fallback everywhere else;
    either way the lane must see the pictures, times and packets a CPU decode gives."""
    source = file_source(videos / CLIP)
    cpu, gpu = Camera(source), Camera(source, decode=DecodePlan("cuda", "forced by the test"))
    failure = cuda_decoder_failure() if "cuda" in hwdevices_available() else "no hwaccel"
    try:
        with caplog.at_level(logging.WARNING, logger="khfsm.server.camera"):
            assert cpu.open() == gpu.open()
        assert cpu.decoder == "cpu"
        assert gpu.decoder == ("cuda" if failure is None else "cpu")
        if failure is not None:
            assert "the GPU's video decoder failed" in caplog.text
            assert "decoding on the CPU" in caplog.text
        for index in range(30):
            a, b = cpu.read(), gpu.read(lazy=index % 2 == 1)
            assert a is not None and b is not None
            assert (a.timestamp, a.pts) == (b.timestamp, b.pts)
            assert [bytes(p) for p in a.packets] == [bytes(p) for p in b.packets]
            assert np.array_equal(a.image, b.image), f"frame {index} differs"
    finally:
        cpu.close(), gpu.close()


def test_a_broken_file_is_the_cameras_fault_not_the_gpus(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    camera = Camera(file_source(broken), decode=DecodePlan("cuda", "forced by the test"))
    with pytest.raises(CameraError, match="cannot open camera"):
        camera.open()


def test_an_nv12_picture_converts_to_the_planar_pictures_pixels(videos: Path) -> None:
    """GPU decoders hand out NV12; the lane's BGR must be what the CPU's planar picture
    gives, bit for bit, or keypoints would depend on where a camera was decoded."""
    with av.open(str(videos / CLIP)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            assert frame.format.name == "yuv420p"
            nv12 = frame.reformat(format="nv12")
            assert np.array_equal(to_bgr(nv12), to_bgr(frame)), f"frame {index} differs"
            if index == 10:
                break


@pytest.mark.anyio
async def test_a_site_asked_to_decode_on_the_gpu_opens_and_its_lanes_run(
    tmp_path: Path, videos: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`decoder = "cuda"` on a machine whose GPU decoder cannot open (this one) is one line at
    start and CPU decoding, never a lane lost; on a CUDA machine the lane decodes there."""
    media = tmp_path / "media"
    media.mkdir()
    shutil.copyfile(videos / CLIP, media / "clip.mp4")
    settings = Settings(data_dir=tmp_path, media_root=media, decoder="cuda")
    with caplog.at_level(logging.INFO, logger="khfsm.site"):
        async with khfsm.Site(settings) as site:
            lane = await site.prepare(
                "pushup", camera="clip.mp4", level=5, duration=1, fps=10, video="v.mp4"
            )
            await lane.start()
            pushes = [push async for push in lane.progress()]
            assert pushes[-1].status == (-2,), pushes[-1]
            assert site.decode.name == ("cpu" if cuda_decoder_failure() else "cuda")
            lanes = [info for info in site.registry.lanes.values() if info.session_over]
            assert [info.figures()["decoder"] for info in lanes] == [site.decode.name]
    assert f"cameras decoded on {site.decode.name} ({site.decode.reason})" in caplog.text
    if not has_nvidia_driver():  # said in one line, not raised
        assert "the GPU's context was left as it is: no NVIDIA driver" in caplog.text


def high10_h264(path: Path, frames: int = 8) -> Path:
    """An H.264 High 10 clip: a profile NVDEC cannot decode (FFmpeg offers the CUDA hwaccel
    for 8-bit 4:2:0 H.264 only), so a GPU-planned camera must fall back to software."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p10le"
        for index in range(frames):
            # Saturated colour edges: where chroma interpolation differs, if it does.
            picture = np.zeros((180, 320, 3), np.uint8)
            picture[:, : 40 + 20 * index] = (255, 40, 0)
            picture[60:120, :, 2] = 230
            frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
            for packet in stream.encode(frame.reformat(format="yuv420p10le")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_a_stream_the_gpu_cannot_decode_is_reported_decoded_on_the_cpu(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Here the GPU's decoder does not even open; on a CUDA machine it opens and FFmpeg falls
    back to software at the first keyframe, which the camera learns from its first picture.
    Either way the lane's figures must not say "cuda" for a camera the CPU decodes."""
    clip = high10_h264(tmp_path / "high10.mp4")
    camera = Camera(file_source(clip), decode=DecodePlan("cuda", "forced by the test"))
    try:
        with caplog.at_level(logging.WARNING, logger="khfsm.server.camera"):
            camera.open()
            frame = camera.read()
        assert frame is not None and frame.image.shape == (180, 320, 3)
        assert camera.decoder == "cpu"
        assert "decoding on the CPU" in caplog.text
    finally:
        camera.close()


def test_only_the_devices_picture_formats_read_as_decoded_there(videos: Path) -> None:
    plan = DecodePlan("cuda", "forced by the test")
    with av.open(str(videos / CLIP)) as container:
        picture = next(container.decode(video=0))
    assert not plan.decoded_on_device(picture.format.name)  # the software decoder's yuv420p
    assert plan.decoded_on_device(picture.reformat(format="nv12").format.name)
    assert not DecodePlan(None, "cpu").decoded_on_device("nv12")


def test_a_10_bit_picture_from_the_gpu_converts_as_the_cpus(tmp_path: Path) -> None:
    """NVDEC hands out 10-bit pictures as P010; unlike NV12, FFmpeg's direct conversion of
    P010 already gives the planar picture's pixels, so `to_bgr` needs no rearranging."""
    with av.open(str(high10_h264(tmp_path / "high10.mp4"))) as container:
        for index, frame in enumerate(container.decode(video=0)):
            assert frame.format.name == "yuv420p10le"
            p010 = frame.reformat(format="p010le")
            assert np.array_equal(to_bgr(p010), to_bgr(frame)), f"frame {index} differs"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts Linux threads")
def test_colour_conversion_runs_in_the_readers_thread(videos: Path) -> None:
    """PyAV's default keeps a pool of swscale threads alive with each converted picture (on 2
    cores, 26 for these 6 pictures converted twice each): CPU beside the other lanes'
    inference that the lane's decode figure does not see. `to_bgr` converts in the calling
    thread and starts none."""
    with av.open(str(videos / CLIP)) as container:
        before = len(list(Path("/proc/self/task").iterdir()))
        alive = []
        for index, frame in enumerate(container.decode(video=0)):
            nv12 = frame.reformat(format="nv12", threads=1)  # as a GPU decoder hands it out
            alive.append((frame, nv12, to_bgr(frame), to_bgr(nv12)))
            if index == 5:
                break
        started = len(list(Path("/proc/self/task").iterdir())) - before
    # (fewer than one a picture: a thread some other part of the process starts meanwhile
    # must not fail this)
    assert started < len(alive), f"{started} threads started converting {len(alive)} pictures"
