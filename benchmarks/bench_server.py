"""How many 20 fps lanes does this machine sustain? Frame-to-push latency, loop lag, video size.

Starts `khfsm serve` in a subprocess (temporary SQLite store and media root, the shared clips
copied in), then ramps 1, 2, 3 … simultaneous lanes, each reading its own clip as a
camera (played at the clip's own rate, like a camera) for --seconds at 20 fps, each driven
by its own WebSocket tablet. A lane *falls behind* when it needs noticeably longer than its
Duration to assess its round(Duration × Fps) frames (its assessed rate drops below 20 fps)
or when its camera backlog stays full. The ramp stops at the first step where a lane falls
behind.

Lanes start at once by default: the worst case, because each lane's first 2 s run the pose
detector on every 4th frame as well while the examinee is chosen (`khfsm.vision.examinee`,
settling), so a step's first seconds cost more than the steady state; --stagger S starts them
S s apart, as lanes whose operators press start one after another.

With --resolution 720p or 360p the clips are first transcoded (once, cached in a temporary
folder, never committed) to 1280x720 or 640x360 at 25 fps, H.264: what an IP camera sends;
a clip shorter than the step is played backwards and forwards in turn, so steps may be as
long as a real test (60 s: the lane's settling, the detector's extra work, is then as small
a share of its frames as in a one-minute test, not the 10 % of a 20 s step).

Figures printed per step and in the summary:
  * assessed fps per lane, and whether each lane kept up; frames assessed per second by all
    lanes together, and in the summary its peak against inference alone (the pipeline's
    throughput without the rounding to whole lanes);
  * CPU seconds per lane-second: the server process as a whole, and split by stage (decode,
    pose, record, rules+events, other = the rest of the process: store, pushes, loop) where
    the server reports its per-stage figures, and "other" split into the event loop (its
    thread's CPU apart from the rules) and the server's other threads;
  * frame-to-push latency: from the moment a camera frame is available to the server to the
    moment its verdict (and push, if any) is handed to the tablet's connection, median and
    p99 over every frame of every lane (the server's own per-lane samples, /healthz), and
    the p99 of each lane's last 10 s (its last 200 frames): the steady load without the
    start, where lanes started at once also run the detector while the examinee is chosen;
  * event-loop lag p99 during the step (the server's ticker, /healthz);
  * the recording's size per minute of video;
  * how much of the step some thread of the server held the GIL (sampled by py-spy, a dev
    dependency, 100 times a second without pausing the server), as milliseconds per assessed
    frame and as the frames per second at which one server process would hold it all the
    time: the ceiling of one process whatever runs the inference (a GPU takes inference and
    decoding off the CPU, not the Python around them). A thread the kernel preempts while it
    holds the GIL still counts (on 2 busy cores `py-spy --native` finds about a sixth of the
    samples in cheap system calls such as getpid, where the kernel switched threads), so on
    a busy machine the figure is an upper bound; where cores are spare, as on a GPU machine,
    it is close to the Python work itself;
  * how many frames the pose batches held on average (cross-lane batching; on CPU 1 until
    lanes fall behind), how long each took, of which in the models' runs, its CPU time, and
    how long a frame waited for its batch to begin (a lane's next frame waits for its last,
    so wait and batch cap a lane's rate), and, where nvidia-smi is found, how busy the GPU
    was and its memory in use;
  * inference alone, measured in this process before and after the ramp on the first clip's
    frames at the same resolution (`bench_pose.py`'s tracking throughput, as the server plans
    it: a worker per core on CPU, its batches on a GPU; frames that run no detector, as a lane
    runs once its examinee has settled), as lanes of 20 fps: the figure the lanes sustained
    are compared with, in one run on one machine (this machine's speed drifts between runs).
  * decoding alone: the CPU a lane's camera thread spends per assessed frame, measured in
    this process beside inference alone on as many cameras as the ramp's largest step, their
    clips, decoded in turn a frame each in one thread (every camera frame decoded, the
    assessed ones converted for the models); and, with the models on the CPU, the
    most frames per second the cores could assess when they decode the cameras as well and
    nothing else in the pipeline cost anything: the ceiling of the ratio to inference alone
    on this machine, at this resolution (the step's own "decode" figure is what decoding cost
    inside the server, among all its threads).
  * inference alone at the target's pace (on CPU): the CPU a frame costs when the workers run
    one frame a batch at the rate of the lanes the target asks for, waiting between frames as
    they do while lanes keep up, against back to back; and the lanes the cores carry at that
    cost. Inference alone's frames per second are measured flat out, and on some machines a
    frame costs a good deal more at a pace the lanes can sustain (`bench_pose.paced_cost`).

With --servers N it starts N server processes, each with its own data directory (store,
spool) and media root, as several servers on one machine run (README, "More lanes than one
process carries"), and puts lane i on server i mod N: the figures are then those of all N
together, and the GIL line gives each process's share and what N processes top out at.

usage: python benchmarks/bench_server.py [--resolution native|720p|360p] [--seconds 20]
       [--start-lanes 1] [--max-lanes 6] [--lane-step 1] [--stagger 0] [--workers N]
       [--servers 1] [--reference-seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import websockets

from khfsm.domain.codes import EndStatus

if TYPE_CHECKING:  # imported where used, to keep --help fast
    from khfsm.vision.batching import InferencePlan
    from khfsm.vision.picture import Image
    from khfsm.vision.pose import PoseModels, Track

    # the models, the server's plan, a clip's frames and each one's tracking state
    TrackingFrames = tuple[PoseModels, InferencePlan, list[Image], list[Track | None]]

REPO = Path(__file__).resolve().parents[1]
VIDEOS = Path(os.environ.get("KHFSM_TEST_VIDEOS", REPO.parent / "shared" / "data" / "videos"))
# Clips at least 20 s long as they are (--resolution native); a lane cycles through them.
CLIPS = [
    "pushup_01_div_perfect_pushup_2.mp4",
    "pushup_06_tayyab_pushup.mp4",
    "squat_01_rjsong_squat2_front.mp4",
    "situp_01_joelo_situp.mp4",
]
FPS = 20
RESOLUTIONS = {"720p": (1280, 720), "360p": (640, 360)}
CAMERA_FPS = 25
CAMERA_TIME_BASE = Fraction(1, CAMERA_FPS)
# A lane's camera opens after its prepare and start: a transcoded clip plays this much longer
# than a step (the server's first-frame allowance is a few seconds as well).
LANE_START_S = 5.0
STAGES = ("decode", "pose", "record", "rules")
# Issue 14's target: the lanes sustained while recording, at least this share of the lanes
# inference alone allows (whole lanes of 20 fps, as `bench_pose.py` prints them).
TARGET_SHARE = 0.85


def transcoded_clips(resolution: str, seconds: float) -> Path:
    """The clips at `resolution`, 25 fps H.264, transcoded once into a temporary folder, each
    at least `clip_length(seconds)` long (see `transcode`)."""
    length = clip_length(seconds)
    folder = Path(tempfile.gettempdir()) / f"khfsm-bench-clips-{resolution}-{length}s"
    folder.mkdir(exist_ok=True)
    for clip in CLIPS:
        target = folder / clip
        if target.is_file():
            continue
        partial = folder / f".{clip}.part.mp4"
        transcode(VIDEOS / clip, partial, RESOLUTIONS[resolution], length)
        partial.rename(target)
    return folder


def clip_length(seconds: float) -> int:
    """How long the transcoded clips must play for steps of `seconds`: the step, the lane's
    start before its camera's first frame (prepare, start, opening the file), in whole 10 s
    so that nearby --seconds share one set of clips."""
    return 10 * math.ceil((seconds + LANE_START_S) / 10)


def transcode(source: Path, target: Path, size: tuple[int, int], length: float) -> None:
    """`source` at `size` (width, height), 25 fps H.264 as an IP camera sends it, at least
    `length` seconds long: a shorter clip goes on backwards from its end, then forwards again
    from its start, and so on ("ping-pong"), so the examinee's motion stays continuous. A
    clip started over instead would jump the examinee back to the first frame's position,
    the tracker would lose them and the detector run again, which a real camera never
    shows. Such a clip's pictures are held in memory to be played backwards (about 1.4 MB a
    picture at 720p: 1.6 GB for a 47 s clip)."""
    import av  # the server's own dependency; imported here to keep --help fast

    width, height = size
    with av.open(str(source)) as clip, av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=CAMERA_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # an IP camera's stream: no B-frames, a keyframe every 2 s
        stream.codec_context.options = {"preset": "veryfast", "crf": "23", "bf": "0"}
        stream.codec_context.gop_size = 2 * CAMERA_FPS
        written = 0

        def encode(picture: av.VideoFrame) -> None:
            nonlocal written
            picture.pts, picture.time_base = written, CAMERA_TIME_BASE  # frame n at n / 25 s
            for packet in stream.encode(picture):
                out.mux(packet)
            written += 1

        # the pictures, kept only where the clip must be played back and forth
        kept: list[av.VideoFrame] | None = [] if (clip.duration or 0) / 1e6 < length else None
        for frame in clip.decode(video=0):
            # frame-rate conversion by time: source frame at t serves the 25 fps slots <= t
            # (t read first: `encode` sets the pts of a picture that is the frame itself)
            shown_at = frame.time or 0.0
            if written / CAMERA_FPS > shown_at:
                continue  # serves no slot (a source faster than 25 fps)
            picture = frame.reformat(width=width, height=height, format="yuv420p")
            while written / CAMERA_FPS <= shown_at:
                if kept is not None:
                    kept.append(picture)  # the same picture in each of its slots
                encode(picture)
        backwards = True
        while kept and len(kept) > 1 and written / CAMERA_FPS < length:
            # the turning picture is not shown twice
            for picture in kept[-2::-1] if backwards else kept[1:]:
                if written / CAMERA_FPS >= length:
                    break
                encode(picture)
            backwards = not backwards
        for packet in stream.encode(None):
            out.mux(packet)
    if written / CAMERA_FPS < length:
        print(f"note: {source.name} is only {written / CAMERA_FPS:.1f} s long")


def clip_seconds(path: Path) -> float:
    """How long a clip plays, by its container (the lanes play it at its own rate)."""
    import av

    with av.open(str(path)) as container:
        return (container.duration or 0) / 1e6


def too_short(folder: Path, clips: list[str], seconds: float) -> list[str]:
    """The clips (of those the ramp's lanes read) that end before a lane's --seconds do: such a
    lane ends with -4 when its file ends, which is not falling behind."""
    return [
        f"{clip} ({length:.1f} s)"
        for clip in clips
        if (length := clip_seconds(folder / clip)) < seconds
    ]


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    return _cpu_s(Path(f"/proc/{pid}/stat"))


def main_thread_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process's main thread (its id is the process's): the
    server's event loop, with the lanes' Python that runs in it."""
    return _cpu_s(Path(f"/proc/{pid}/task/{pid}/stat"))


def _cpu_s(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class GilMeter:
    """The share of wall time some thread of process `pid` holds the GIL, sampled by py-spy
    (`--gil --nonblocking`: only samples of the thread holding it are kept, and the server
    is not paused to take them). `stop()` returns it, or None when py-spy is not installed
    or cannot attach (it needs ptrace), with the reason in `why_not`."""

    RATE = 100  # samples per second: 2,000 over a 20 s step

    def __init__(self, pid: int, output: Path) -> None:
        self.why_not = ""
        self._process: subprocess.Popen[str] | None = None
        installed = Path(sys.executable).parent / "py-spy"
        spy = str(installed) if installed.exists() else shutil.which("py-spy")
        if spy is None:
            self.why_not = "py-spy is not installed (pip install -e '.[dev]')"
            return
        command = [spy, "record", "--gil", "--nonblocking", "--rate", str(self.RATE),
                   "--format", "raw", "--output", str(output), "--pid", str(pid)]  # fmt: skip
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._started = time.monotonic()

    def stop(self) -> float | None:
        if self._process is None:
            return None
        elapsed = time.monotonic() - self._started
        self._process.send_signal(signal.SIGINT)  # py-spy writes its figures on Ctrl-C
        try:
            out, _ = self._process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            out, _ = self._process.communicate()
        found = re.search(r"Samples: (\d+) Errors: (\d+)", out)
        if found is None:
            self.why_not = "py-spy: " + (out.strip().splitlines() or ["no output"])[-1]
            return None
        held, errors = int(found[1]), int(found[2])
        # An error is a sample py-spy could not read: left out of both sides.
        ticks = elapsed * self.RATE - errors
        return min(1.0, held / ticks) if ticks > 0 else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """One `khfsm serve` process of the benchmark, with its own data directory (store, spool)
    and media root, as each of several servers on one machine has (README, "More lanes than
    one process carries")."""

    process: subprocess.Popen[bytes]
    port: int
    root: Path

    @property
    def media(self) -> Path:
        return self.root / "media"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"


def launch_server(root: Path, clips: Path, workers: int) -> Server:
    """A server process on a free port with `root` as its data directory, the clips in its
    media root (copied: a link out of the media root is refused); `wait_until_up` waits for
    it. Several are launched before any is waited for: a GPU server's start (CUDA, cuDNN) takes
    seconds, and eight in a row would take a minute."""
    media = root / "media"
    media.mkdir(parents=True)
    for clip in CLIPS:
        shutil.copyfile(clips / clip, media / clip)
    port = free_port()
    env = {
        **os.environ,
        "KHFSM_DATA_DIR": str(root),
        "KHFSM_MEDIA_ROOT": str(media),
        "KHFSM_INFERENCE_WORKERS": str(workers),
    }
    command = [sys.executable, "-c", "from khfsm.cli.main import cli; cli()", "serve",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING"]  # fmt: skip
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    return Server(process, port, root)


def wait_until_up(server: Server, timeout: float = 120.0) -> None:
    """Until the server answers /healthz; else the end of its log (the temporary folder that
    holds it is removed when the benchmark ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.process.poll() is None:
        try:
            if httpx.get(server.health_url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    server.process.kill()
    server.process.wait()
    log = (server.root / "server.log").read_text(errors="replace").strip().splitlines()
    raise SystemExit("a server did not start; the end of its log:\n" + "\n".join(log[-20:]))


def stop_servers(servers: list[Server]) -> None:
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


async def run_lane(
    url: str, capture_id: int, clip: str, video: str, seconds: float, delay: float = 0.0
) -> dict:
    await asyncio.sleep(delay)
    async with websockets.connect(url) as ws:
        prepare = {"Task": "pushup", "Op": "prepare", "CaptureID": capture_id,
                   "CapturePath": clip, "ModelPath": video, "Duration": seconds,
                   "Fps": FPS, "Level": 5}  # fmt: skip
        await ws.send(json.dumps(prepare))
        ack = json.loads(await ws.recv())
        if ack["result"] != "ok":
            raise SystemExit(f"prepare refused: {ack['error']}")
        await ws.send(json.dumps({"Task": "pushup", "Op": "start", "CaptureID": capture_id}))
        started = time.monotonic()
        while True:
            body = json.loads(await ws.recv())
            if "result" in body:
                continue
            if any(code < 0 for code in body["status"]):
                return {"elapsed": time.monotonic() - started, "terminal": body}


async def poll_health(url: str, stop: asyncio.Event, samples: list[dict]) -> None:
    async with httpx.AsyncClient() as client:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):  # a missed sample is not a result
                samples.append((await client.get(url, timeout=5)).json())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)


def inference_alone(tracking: TrackingFrames, seconds: float) -> float:
    """Frames per second of the pose step alone (tracking, as `bench_pose.py` measures it) on
    a clip's frames at the benchmark's resolution (`tracking_frames`), in this process, run
    as the server plans it (`inference_plan`): on CPU a worker per core, one frame and one
    intra-op thread each; on a GPU its batches in flight, I/O-bound, full. What the lanes are
    measured against."""
    from bench_pose import throughput

    models, plan, frames, rois = tracking
    return throughput(models, frames, rois, plan.max_batch, plan.workers, seconds)


@dataclass(frozen=True)
class Pace:
    """Inference alone's CPU per frame at a lane load's pace, and back to back."""

    lanes: int  # the pace: this many lanes of 20 fps
    paced_s: float  # CPU seconds per frame at that pace
    flat_out_s: float  # back to back

    def lanes_carried(self, cores: int, decode_s: float = 0.0) -> float:
        """The lanes of 20 fps `cores` cores carry at this pace's cost per frame (plus
        `decode_s` of decoding per frame), with nothing else to do."""
        return cores / ((self.paced_s + decode_s) * FPS)


def inference_at_pace(tracking: TrackingFrames, lanes: int, seconds: float) -> Pace | None:
    """CPU per frame of inference alone at the pace of `lanes` lanes of 20 fps (the server's
    workers, one frame a batch, waiting between frames), and back to back
    (`bench_pose.paced_cost`): what a frame costs the cores at a load the lanes could keep up
    with, beside what inference alone's frames per second imply. None with the models on a
    GPU (its batches are not one frame each)."""
    from bench_pose import paced_cost

    models, plan, frames, rois = tracking
    if models.on_gpu:
        return None
    paced = paced_cost(models, frames, rois, plan.workers, lanes * FPS, seconds)
    flat_out = paced_cost(models, frames, rois, plan.workers, None, seconds)
    return Pace(lanes, paced, flat_out)


def tracking_frames(clip: Path) -> TrackingFrames:
    """The pose models, the server's inference plan, `clip`'s first frames and the tracking
    state each starts from (`bench_pose.tracking_rois`), OpenCV's pool sized as a server's:
    made once, for inference alone before and after the ramp and at the target's pace."""
    import cv2
    from bench_pose import load_frames, tracking_rois

    from khfsm.vision.batching import inference_plan
    from khfsm.vision.pose import load_pose_models

    with contextlib.redirect_stdout(io.StringIO()):
        models = load_pose_models(threads=1)
        plan = inference_plan(models.on_gpu)
        cv2.setNumThreads(plan.workers)  # as a server sizes OpenCV's pool (khfsm.site)
        frames = load_frames(clip, max(40, 2 * plan.max_batch))
        rois = tracking_rois(models, frames)
    if models.on_gpu:
        models.use_batching(plan.max_batch)
    models.crop_in_threads(plan.crop_threads)
    return models, plan, frames, rois


def decoding_alone(clips: list[Path], seconds: float) -> float:
    """CPU seconds a lane's camera thread spends per assessed frame on `clips` (25 fps files
    assessed at 20 fps), a camera per clip, as `khfsm.server.pipeline` reads them
    (`Camera.read(lazy=True)`, one decoding thread per camera, the assessed frames converted
    for the models), for `seconds`. The cameras take turns a frame each, as the lanes' camera
    threads do on a server's cores: each decoder then starts its frame with its state out of
    the caches, which costs more than decoding one camera on its own (on 2 cores, 720p, about
    40 % more with 8 cameras). Inference alone never pays this, a lane always does: with the
    models on the same cores it bounds what the lanes can reach (see `decoding_ceiling`)."""
    from khfsm.domain.timeline import assessed_until
    from khfsm.server.camera import Camera
    from khfsm.server.paths import CameraSource, SourceKind

    cameras = [Camera(CameraSource(SourceKind.FILE, str(clip), clip.name)) for clip in clips]
    next_frame = [0] * len(cameras)  # each camera's next assessed frame
    spent = 0.0
    assessed = 0
    deadline = time.monotonic() + seconds
    try:
        for camera in cameras:
            camera.open()
        while time.monotonic() < deadline:
            for number, camera in enumerate(cameras):
                started = time.thread_time()
                frame = camera.read(lazy=True)
                if frame is None:  # the clip ended: again from its start, as a new lane's
                    camera.close()
                    cameras[number] = Camera(camera.source)
                    cameras[number].open()
                    next_frame[number] = 0
                    continue
                k = next_frame[number]
                end = assessed_until(k, FPS, frame.timestamp)
                if end > k:
                    frame.for_pose()
                spent += time.thread_time() - started
                assessed += end - k
                next_frame[number] = end
    finally:
        for camera in cameras:
            camera.close()
    return spent / max(1, assessed)


def lanes_needed(allowed: int, share: float = TARGET_SHARE) -> int:
    """The whole lanes the target asks for: at least `share` of the `allowed` lanes of
    inference alone (85 % of 9 is 7.65, so 8; of 6, 5.1, so 6)."""
    return math.ceil(round(share * allowed, 9))


def decoding_ceiling(inference_fps: float, decode_s: float, cores: int) -> float:
    """The most frames per second `cores` cores can assess when the cameras are decoded on the
    same cores as the models: each frame costs inference alone's share of the cores
    (cores / inference_fps core-seconds) plus its decoding (`decode_s`), before any of the
    rest of the pipeline (the loop, the store, the pushes, the rules)."""
    return cores / (cores / inference_fps + decode_s)


class GpuMeter:
    """The GPU's utilisation during a step (the share of time a kernel ran, as nvidia-smi
    reports it, every 500 ms) and its memory in use; nothing where there is no nvidia-smi."""

    def __init__(self) -> None:
        smi = shutil.which("nvidia-smi")
        self._process: subprocess.Popen[str] | None = None
        if smi is not None:
            command = [smi, "--query-gpu=utilization.gpu,memory.used",
                       "--format=csv,noheader,nounits", "-lms", "500"]  # fmt: skip
            self._process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )

    def stop(self) -> dict[str, float] | None:
        if self._process is None:
            return None
        self._process.terminate()
        out, _ = self._process.communicate(timeout=10)
        samples = []
        for line in out.splitlines():
            with contextlib.suppress(ValueError):  # a line cut by the terminate
                busy, memory = (float(field) for field in line.split(","))
                samples.append((busy, memory))
        if not samples:
            return None
        return {
            "busy_mean": statistics.mean(busy for busy, _ in samples),
            "busy_max": max(busy for busy, _ in samples),
            "memory_mib": max(memory for _, memory in samples),
        }


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999) - 1))]


async def step(
    servers: list[Server], lanes: int, seconds: float, stagger: float = 0.0
) -> dict[str, Any]:
    """`lanes` lanes at once, lane i on server i mod len(servers); the figures of the step."""
    on = [servers[i % len(servers)] for i in range(lanes)]
    stop = asyncio.Event()
    samples: list[list[dict]] = [[] for _ in servers]  # each server's /healthz, once a second
    pollers = [
        asyncio.create_task(poll_health(server.health_url, stop, taken))
        for server, taken in zip(servers, samples, strict=True)
    ]
    videos = [f"bench/{lanes}_{i}_{time.time_ns()}.mp4" for i in range(lanes)]
    # Each lane's CaptureID, unique across the ramp's steps, and its number in this step
    # (1 = the first), as the step's figures name it.
    lane_numbers = {1000 * lanes + i: i + 1 for i in range(lanes)}
    capture_ids = list(lane_numbers)
    cpu_before = [process_cpu_s(server.process.pid) for server in servers]
    loop_before = [main_thread_cpu_s(server.process.pid) for server in servers]
    async with httpx.AsyncClient() as client:
        inference_before = [
            (await client.get(server.health_url, timeout=10)).json()["inference"]
            for server in servers
        ]
    gpu = GpuMeter()
    meters = [GilMeter(server.process.pid, server.root / f"gil-{lanes}.txt") for server in servers]
    results = await asyncio.gather(
        *(
            run_lane(
                f"ws://127.0.0.1:{on[i].port}/bench",
                capture_ids[i],
                CLIPS[i % len(CLIPS)],
                videos[i],
                seconds,
                i * stagger,
            )
            for i in range(lanes)
        )
    )
    finals = []
    async with httpx.AsyncClient() as client:
        for server in servers:
            answer = await client.get(server.health_url, params={"lag_window": seconds})
            finals.append(answer.json())
    cpu_used = sum(
        process_cpu_s(server.process.pid) - before
        for server, before in zip(servers, cpu_before, strict=True)
    )
    loop_used = sum(
        main_thread_cpu_s(server.process.pid) - before
        for server, before in zip(servers, loop_before, strict=True)
    )
    gil_held = [meter.stop() for meter in meters]
    gpu_use = gpu.stop()
    # Frames per pose batch over the step, all servers: how full the batches were.
    batches, batched, batch_seconds, model_seconds, batch_cpu_seconds, wait_seconds = (
        sum(
            final["inference"][key] - before[key]
            for final, before in zip(finals, inference_before, strict=True)
        )
        for key in (
            "batches",
            "frames",
            "batch_seconds",
            "model_seconds",
            "batch_cpu_seconds",
            "wait_seconds",
        )
    )
    stop.set()
    await asyncio.gather(*pollers)
    infos = [
        info
        for final in finals
        for info in final["ended_lanes"]
        if info["capture_id"] in lane_numbers
    ]
    # "Stays full": at least 7 of the 8 queued frames in two samples of one server in a row
    # (1 s apart); one sample at a moment of a burst (all lanes starting at once) is not
    # falling behind.
    full_in = [
        [
            {
                info["capture_id"]
                for info in sample.get("lane_list", [])
                if info["capture_id"] in lane_numbers
                and info["state"] == "running"
                and info["backlog"] >= 7
            }
            for sample in taken
        ]
        for taken in samples
    ]
    backlog_full = set().union(
        *(a & b for series in full_in for a, b in itertools.pairwise(series))
    )
    frames = round(seconds * FPS)
    per_lane = []
    ended_early: list[str] = []
    for i, result in enumerate(results):
        elapsed = result["elapsed"]
        assessed = result["terminal"]["frames"]
        rate = assessed / elapsed
        # the camera is opened after start: allow that and the first frame's pacing
        kept_up = assessed == frames and elapsed <= seconds * 1.05 + 1.0
        status = result["terminal"]["status"][0]
        if status != EndStatus.TIME_UP:  # not a measurement of speed: say what ended the lane
            ended_early.append(f"lane {i + 1}: {status} {result['terminal'].get('msg', '')}")
        # A lane that ended before its first frame (a lost camera) has no video to measure.
        video = on[i].media / videos[i]
        size = video.stat().st_size if video.exists() else 0
        minutes = assessed / FPS / 60
        per_lane.append({"fps": rate, "elapsed": elapsed, "kept_up": kept_up,
                         "mb_per_min": size / 1e6 / minutes if minutes else 0.0})  # fmt: skip
    lane_seconds = sum(result["terminal"]["frames"] for result in results) / FPS
    stages: dict[str, float] = {}
    for stage in STAGES:
        reported = [info[f"cpu_s_{stage}"] for info in infos if f"cpu_s_{stage}" in info]
        if reported:
            stages[stage] = sum(reported) / lane_seconds
    other_split: dict[str, float] = {}
    if stages:
        stages["other"] = cpu_used / lane_seconds - sum(stages.values())
        # The rules run in the event loop's thread too (and are counted as the rules): the
        # rest of that thread is the loop itself, the rest of "other" the server's other
        # threads (the camera threads apart from decoding and muxing, deliveries, the store).
        loop = loop_used / lane_seconds - stages.get("rules", 0.0)
        other_split = {"event loop": loop, "other threads": stages["other"] - loop}
    p50 = [info["latency_ms_p50"] for info in infos]
    p99 = [info["latency_ms_p99"] for info in infos]
    p99_recent = [info["latency_ms_p99_recent"] for info in infos]
    lags = [final["event_loop_lag_ms"] for final in finals]
    return {
        "lanes": lanes,
        "per_lane": per_lane,
        "kept_up": all(lane["kept_up"] for lane in per_lane) and not backlog_full,
        "backlog_full": sorted(lane_numbers[capture_id] for capture_id in backlog_full),
        "ended_early": ended_early,
        "latency_ms_p50": max(p50) if p50 else 0.0,
        "latency_ms_p99": max(p99) if p99 else 0.0,
        "latency_ms_p99_recent": max(p99_recent) if p99_recent else 0.0,
        "loop_lag_ms": {key: max(lag[key] for lag in lags) for key in ("p99", "max")},
        "cpu_per_lane_s": cpu_used / lane_seconds if lane_seconds else 0.0,
        "stages": stages,
        "other_split": other_split,
        "gil_held": gil_held,
        "frames_per_batch": batched / batches if batches else 0.0,
        "batch_ms": 1000 * batch_seconds / batches if batches else 0.0,
        "batch_model_ms": 1000 * model_seconds / batches if batches else 0.0,
        "batch_cpu_ms": 1000 * batch_cpu_seconds / batches if batches else 0.0,
        "frame_wait_ms": 1000 * wait_seconds / batched if batched else 0.0,
        "gpu": gpu_use,
        "gil_why_not": next((meter.why_not for meter in meters if meter.why_not), ""),
    }


def gil_text(result: dict[str, Any]) -> str:
    """The GIL line of a step: how long each server process held it, per frame it assessed,
    and the ceiling that puts on one process (and on all of them)."""
    held: list[float | None] = result["gil_held"]
    if any(share is None for share in held):
        return f"GIL: not measured ({result['gil_why_not']})"
    shares = [share for share in held if share is not None]
    fps = sum(lane["fps"] for lane in result["per_lane"])  # every process's frames
    servers = len(shares)
    where = "" if servers == 1 else f" in each of {servers} server processes"
    spent = ", ".join(f"{share:.1%}" for share in shares)
    if sum(shares) <= 0 or fps <= 0:
        return f"GIL held {spent} of the step{where} (py-spy)"
    # The processes' GIL time over all their frames: per frame, whichever process it ran in.
    per_frame_ms = sum(shares) / fps * 1000
    ceiling = 1000 / per_frame_ms
    every = ""
    if servers > 1:
        every = f", {servers} processes near {servers * ceiling / FPS:.1f} lanes"
    return (
        f"GIL held {spent} of the step{where} (py-spy): {per_frame_ms:.2f} ms per assessed "
        f"frame, so one server process tops out near {ceiling:.0f} frames/s = "
        f"{ceiling / FPS:.1f} lanes of {FPS} fps{every}, whatever runs the inference"
    )


def gpu_text(result: dict[str, Any]) -> str:
    use = result["gpu"]
    if use is None:
        return ""
    return (
        f"; GPU busy {use['busy_mean']:.0f} % on average (max {use['busy_max']:.0f} %), "
        f"{use['memory_mib']:.0f} MiB in use"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-lanes", type=int, default=6)
    parser.add_argument("--start-lanes", type=int, default=1, help="the ramp's first step")
    parser.add_argument(
        "--lane-step",
        type=int,
        default=1,
        help="lanes added per step (a GPU machine's ramp to 100 lanes one at a time would "
        "take half an hour; with 10 it takes minutes)",
    )
    parser.add_argument(
        "--stagger",
        type=float,
        default=0.0,
        help="seconds between the lanes' starts (default 0: all at once, the worst case: each "
        "lane's first 2 s also run the detector on every 4th frame while the examinee is chosen)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="inference batches in flight in each server (default 0: the server's own plan, "
        "one per core on CPU; with --servers N, the cores divided among the N servers)",
    )
    parser.add_argument(
        "--servers",
        type=int,
        default=1,
        help="server processes on this machine, each with its own store, spool and media "
        "root; lane i runs on server i mod N (one process's GIL caps its lanes: the GIL line "
        "says where)",
    )
    parser.add_argument(
        "--reference-seconds",
        type=float,
        default=10.0,
        help="how long inference alone is measured before and after the ramp (0: not at all)",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="run every step up to --max-lanes even after one falls behind (a busy machine)",
    )
    parser.add_argument(
        "--resolution",
        choices=("native", *RESOLUTIONS),
        default="native",
        help="the clips as they are, or transcoded once to 1280x720 / 640x360 at 25 fps",
    )
    args = parser.parse_args()
    if args.lane_step < 1:
        parser.error("--lane-step must be at least 1")
    if args.servers < 1:
        parser.error("--servers must be at least 1")
    if not all((VIDEOS / clip).is_file() for clip in CLIPS):
        raise SystemExit(f"clips not found in {VIDEOS}; set KHFSM_TEST_VIDEOS")
    clips = VIDEOS
    if args.resolution != "native":
        clips = transcoded_clips(args.resolution, args.seconds)
    short = too_short(clips, CLIPS[: args.max_lanes], args.seconds)
    if short:
        raise SystemExit(
            f"--seconds {args.seconds:g} is longer than {', '.join(short)}: a lane would end "
            "when its file ends (-4), which reads as falling behind; use a shorter --seconds, "
            "or --resolution 720p/360p (clips as long as the step)"
        )
    root = Path(tempfile.mkdtemp(prefix="khfsm-bench-"))
    reference: list[float] = []
    decode_s: float | None = None
    pace: Pace | None = None
    if args.reference_seconds > 0:
        tracking = tracking_frames(clips / CLIPS[0])
        reference.append(inference_alone(tracking, args.reference_seconds))
        if allowed := int(reference[0] / FPS):  # at the load the target asks for
            pace = inference_at_pace(tracking, lanes_needed(allowed), args.reference_seconds)
        # as many cameras as the ramp's largest step, each lane's clip as `step` gives it
        cameras = [clips / CLIPS[i % len(CLIPS)] for i in range(args.max_lanes)]
        decode_s = decoding_alone(cameras, args.reference_seconds)
    workers = args.workers
    if workers <= 0 and args.servers > 1:  # N servers share the cores (a GPU: its batches)
        workers = max(1, (os.cpu_count() or 1) // args.servers)
    servers: list[Server] = []
    try:
        try:
            for number in range(args.servers):
                servers.append(launch_server(root / f"server-{number + 1}", clips, workers))
            for server in servers:
                wait_until_up(server)
            ramp = run_ramp(args, servers, reference, decode_s, pace)
        finally:
            stop_servers(servers)
        if args.reference_seconds > 0:  # with the servers gone, as before the ramp
            reference.append(inference_alone(tracking, args.reference_seconds))
        print_summary(ramp, reference, decode_s, pace)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Ramp:
    provider: str  # where the servers ran the inference
    sustained: int  # lanes sustained
    best: dict[str, Any] | None  # the figures of that step
    peak: tuple[float, int]  # the most frames per second assessed in a step, and its lanes


def run_ramp(
    args: argparse.Namespace,
    servers: list[Server],
    reference: list[float],
    decode_s: float | None,
    pace: Pace | None,
) -> Ramp:
    """The ramp of steps (`reference`: inference alone, before it; `decode_s`: decoding alone,
    CPU seconds per assessed frame; `pace`: inference alone at the target's pace)."""
    health = httpx.get(servers[0].health_url, timeout=10).json()
    plan, decode = health["inference"], health["decode"]
    processes = f"{len(servers)} server processes, each with " if len(servers) > 1 else ""
    print(f"khfsm server benchmark: {os.cpu_count()} CPU cores, {processes}inference on "
          f"{plan['provider']} ({plan['workers']} batches at once, up to {plan['max_batch']} "
          f"frames each), cameras decoded on {decode['device']} ({decode['reason']}), "
          f"{args.seconds:g} s per step at {FPS} fps, "
          f"clips {args.resolution}, lanes started "
          f"{f'{args.stagger:g} s apart' if args.stagger else 'at once'}")  # fmt: skip
    if reference:
        print(f"inference alone (before the ramp): {reference[0]:.1f} frames/s = "
              f"{reference[0] / FPS:.1f} lanes of {FPS} fps")  # fmt: skip
    if decode_s is not None:
        print(f"decoding alone: {decode_s * 1000:.2f} ms of CPU per assessed frame "
              f"({args.max_lanes} camera(s) decoded in turn in one thread, every camera "
              "frame)")  # fmt: skip
    if pace is not None:
        print(f"inference alone at the target's pace: {pace.paced_s * 1000:.1f} ms of CPU a "
              f"frame at {pace.lanes} lanes' {pace.lanes * FPS} frames/s (one frame a batch, "
              f"the workers waiting between frames), {pace.flat_out_s * 1000:.1f} ms back to "
              "back")  # fmt: skip
    sustained = 0
    best: dict[str, Any] | None = None
    # The most frames per second the server assessed in one step, all lanes together, and at
    # how many lanes: the pipeline's throughput, beside inference's, without the rounding to
    # whole lanes (on a 2-core machine one lane is a third of the ratio).
    peak = (0.0, 0)
    for lanes in range(args.start_lanes, args.max_lanes + 1, args.lane_step):
        result = asyncio.run(step(servers, lanes, args.seconds, args.stagger))
        rates = ", ".join(f"{lane['fps']:.1f}" for lane in result["per_lane"])
        lag = result["loop_lag_ms"]
        verdict = "kept up" if result["kept_up"] else f"FELL BEHIND ({behind_text(result)})"
        if result["ended_early"]:
            verdict = "ENDED EARLY"
        print(
            f"{lanes} lane(s): {verdict}; "
            f"assessed fps per lane [{rates}]; frame-to-push latency p50 "
            f"{result['latency_ms_p50']:.0f} ms, p99 {result['latency_ms_p99']:.0f} ms "
            f"(last 10 s: {result['latency_ms_p99_recent']:.0f} ms); "
            f"loop lag p99 {lag['p99']:.1f} ms (max {lag['max']:.1f}); video "
            f"{sum(x['mb_per_min'] for x in result['per_lane']) / lanes:.1f} MB/min/lane"
        )
        total = sum(lane["fps"] for lane in result["per_lane"])
        peak = max(peak, (total, lanes))
        if result["ended_early"]:
            print("    ended before its Duration, so this step measures nothing: "
                  + "; ".join(result["ended_early"]))  # fmt: skip
            break
        split = ", ".join(f"{name} {value:.3f}" for name, value in result["stages"].items())
        if result["other_split"]:
            split += ": " + ", ".join(
                f"{name} {value:.3f}" for name, value in result["other_split"].items()
            )
        print(
            f"    CPU s per lane-second: {result['cpu_per_lane_s']:.3f}"
            + (f" ({split})" if split else "")
            + f"; {total:.1f} frames/s assessed in all"
        )
        print("    " + gil_text(result))
        print("    " + batch_text(result))
        if not result["kept_up"]:
            if args.keep_going:
                continue
            break
        if sustained in (0, lanes - args.lane_step):
            sustained, best = lanes, result
    return Ramp(plan["provider"], sustained, best, peak)


def behind_text(result: dict[str, Any]) -> str:
    """Why a step fell behind: the lanes that took too long for their frames, and those
    whose camera backlog stayed full (a burst of 2 s or more, as when lanes start at once,
    falls behind too, even where the lane then catches up)."""
    slow = [str(n) for n, lane in enumerate(result["per_lane"], 1) if not lane["kept_up"]]
    reasons = [f"too slow: lane {', '.join(slow)}"] if slow else []
    if result["backlog_full"]:
        full = ", ".join(str(n) for n in result["backlog_full"])
        reasons.append(f"camera backlog full 2 s or more: lane {full}")
    return "; ".join(reasons)


def batch_text(result: dict[str, Any]) -> str:
    """The pose batches of a step: how full, how long, where the time went, and how long a
    frame waited for its batch to begin. A lane's next frame waits for its last, so a frame's
    wait plus its batch's duration cap the lane's rate; what is neither the models' runs nor
    CPU work around them was waiting for a core or the GIL."""
    return (
        f"pose batches: {result['frames_per_batch']:.1f} frames and {result['batch_ms']:.1f} ms "
        f"each on average ({result['batch_model_ms']:.1f} ms in the models' runs; CPU "
        f"{result['batch_cpu_ms']:.1f} ms); a frame waited {result['frame_wait_ms']:.1f} ms "
        "for its batch" + gpu_text(result)
    )


def target_text(sustained: int, allowed: int, ceiling_lanes: int | None) -> str:
    """Issue 14's target in whole lanes, and whether this run met it; where the cameras'
    decoding on the same cores (`ceiling_lanes`) leaves fewer lanes than it asks for, that no
    saving elsewhere in the pipeline can meet it on this machine."""
    needed = lanes_needed(allowed)
    verdict = "met" if sustained >= needed else "not met"
    text = (
        f"target: {TARGET_SHARE:.0%} of inference alone's {allowed} lanes = {needed} lanes "
        f"sustained; this run sustained {sustained}: {verdict}"
    )
    if ceiling_lanes is not None and ceiling_lanes < needed:
        text += (
            f" (out of reach on this machine: decoding the cameras on the same cores leaves "
            f"room for {ceiling_lanes})"
        )
    return text


def print_summary(
    ramp: Ramp, reference: list[float], decode_s: float | None, pace: Pace | None
) -> None:
    sustained, best, peak = ramp.sustained, ramp.best, ramp.peak
    print("\nsummary")
    print(f"  inference provider: {ramp.provider}")
    print(f"  simultaneous 20 fps lanes sustained from video files: {sustained}")
    if reference:
        alone = statistics.mean(reference) / FPS  # lanes of 20 fps, unrounded
        allowed = int(alone)
        spread = ", ".join(f"{value:.1f}" for value in reference)
        ratio = f"{sustained / allowed:.0%}" if allowed else "-"
        print(f"  inference alone: {spread} frames/s (before, after) = {allowed} lanes "
              f"({alone:.1f}); sustained / inference alone = {sustained}/{allowed} = {ratio} "
              f"(of the unrounded {alone:.1f}: {sustained / alone:.0%})")  # fmt: skip
        if peak[0] > 0:
            print(f"  most frames assessed per second, all lanes: {peak[0]:.1f} at {peak[1]} "
                  f"lane(s) = {peak[0] / (alone * FPS):.0%} of inference alone's "
                  f"{alone * FPS:.1f}")  # fmt: skip
        ceiling_lanes: int | None = None
        cores = os.cpu_count() or 1
        if decode_s is not None and ramp.provider == "CPUExecutionProvider":
            # Decoding shares the cores with the models on CPU: what the lanes could reach if
            # nothing else in the pipeline cost anything. A target above it is out of reach.
            ceiling = decoding_ceiling(alone * FPS, decode_s, cores)
            ceiling_lanes = int(ceiling / FPS)
            print(f"  with the cameras decoded on the same {cores} cores: at most "
                  f"{ceiling:.1f} frames/s = {ceiling_lanes} lanes ({ceiling / FPS:.1f}), "
                  f"{ceiling / (alone * FPS):.0%} of inference alone, before the rest of the "
                  "pipeline (loop, store, pushes, rules)")  # fmt: skip
        if pace is not None:
            # What the cores carry where a frame costs what it does at that pace, not at full
            # speed (on some machines a good deal more: `bench_pose.paced_cost`).
            carried = pace.lanes_carried(cores)
            with_decoding = (
                f", {pace.lanes_carried(cores, decode_s):.1f} with the cameras decoded on them"
                if decode_s is not None
                else ""
            )
            print(f"  at the target's pace ({pace.lanes} lanes) inference alone costs "
                  f"{pace.paced_s / pace.flat_out_s - 1:+.0%} CPU a frame against back to "
                  f"back: the {cores} cores carry {carried:.1f} lanes' inference at that cost"
                  f"{with_decoding}")  # fmt: skip
        if allowed:
            print("  " + target_text(sustained, allowed, ceiling_lanes))
    if best is not None:
        print(f"  frame-to-push latency at {sustained} lane(s): median "
              f"{best['latency_ms_p50']:.0f} ms, p99 {best['latency_ms_p99']:.0f} ms; p99 of "
              f"each lane's last 10 s {best['latency_ms_p99_recent']:.0f} ms")  # fmt: skip
        print(f"  event-loop lag p99 at {sustained} lane(s): {best['loop_lag_ms']['p99']:.1f} ms")
        print(f"  at {sustained} lane(s): {gil_text(best)}")
        print(f"  at {sustained} lane(s): {batch_text(best)}")
        sizes = [lane["mb_per_min"] for lane in best["per_lane"]]
        print(f"  recording size: {min(sizes):.1f}-{max(sizes):.1f} MB per minute of video")


if __name__ == "__main__":
    main()
