"""What every lane shares: settings, the media root, the store's writer, the pose service,
the face analyzer, the server's task group and the limiters for blocking work."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio
from anyio.abc import TaskGroup

from khfsm.domain.events import Event
from khfsm.server.decoding import DecodePlan
from khfsm.server.paths import MediaRoot
from khfsm.settings import Settings

if TYPE_CHECKING:  # the vision modules load ONNX Runtime: imported where they are used
    from khfsm.vision.face import FaceAnalyzer
    from khfsm.vision.picture import Image
    from khfsm.vision.pose import PoseEstimate, PoseStep

MAX_LANES = 64  # camera threads: one blocking read per lane at a time


def blocking_threads(settings: Settings) -> int:
    """Threads for each limiter of blocking work: a camera read (or a piece of CPU work) per
    lane at a time, for as many lanes as the site allows (`max_lanes`: a GPU site runs a
    hundred; with fewer threads than lanes, live cameras whose reads wait for the network
    would hold every thread and the other lanes' frames would queue), and never fewer than
    MAX_LANES, so that reads abandoned by ended lanes cannot starve the rest."""
    return max(MAX_LANES, settings.max_lanes)


class EventSink(Protocol):
    """The store's writer as the lanes use it (`khfsm.store.writer.EventWriter`)."""

    def submit(self, session_id: str, events: Sequence[Event]) -> None: ...

    async def flush(self, session_id: str) -> None: ...

    def when_spooled(self, session_id: str, callback: Callable[[], None]) -> None: ...


class PoseEstimator(Protocol):
    """The shared batching pose service (`khfsm.vision.batching.PoseService`)."""

    async def estimate(self, lane: Hashable, frame: Image) -> PoseEstimate | None: ...

    async def track(self, lane: Hashable, frame: Image) -> PoseStep: ...

    def forget(self, lane: Hashable) -> None: ...


class FaceLoader:
    """Loads the face models on first use (in a worker thread) and keeps them."""

    def __init__(
        self, threads: int = 1, providers: str = "auto", models_dir: Path | None = None
    ) -> None:
        self._threads = threads
        self._providers = providers
        self._models_dir = models_dir
        self._analyzer: FaceAnalyzer | None = None
        self._lock = anyio.Lock()

    async def get(self) -> FaceAnalyzer:
        async with self._lock:
            if self._analyzer is None:
                from khfsm.vision.face import load_face_analyzer

                self._analyzer = await anyio.to_thread.run_sync(
                    load_face_analyzer, self._threads, self._providers, self._models_dir
                )
            return self._analyzer


@dataclass(eq=False)
class LaneContext:
    settings: Settings
    media: MediaRoot
    writer: EventSink
    pose: PoseEstimator
    task_group: TaskGroup
    face: FaceLoader
    # model file -> sha256, recorded in every session of that kind
    pose_models: dict[str, str] = field(default_factory=dict)
    face_models: dict[str, str] = field(default_factory=dict)
    # where the lanes' cameras are decoded (chosen once, when the site opens)
    decode: DecodePlan = field(default_factory=lambda: DecodePlan(None, "default"))
    camera_limiter: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(MAX_LANES)
    )
    # Encoding, hashing, photo I/O and the face check: CPU work off the event loop.
    work_limiter: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(MAX_LANES)
    )
