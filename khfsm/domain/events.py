"""The events of a session: an append-only stream numbered from 0.

Frozen dataclasses with past-tense names. Each type has a schema version so that a stored
stream stays readable when a type gains fields; the codec (`khfsm.domain.codec`) turns them
into storable records and back. Keypoints travel as float32 bytes, never as JSON text.

Inputs and derived events: `FrameObserved`, `StopRequested`, `SourceFailed`, `FaceChecked`,
`ExamineeChanged`, `ExamineeLost` and the session's bookends are *inputs* recorded from the
outside world. `RepCounted`,
`MotionViolated` and `SessionEnded` are *derived* by the rules from those inputs, so replay
re-derives and compares exactly them. `ReadinessReported` is an input no command reads (what
the operator was told before the start): the session driver keeps it, so replay keeps it.
`ReviewDecided` (a reviewer's ruling, appended after the end) is kept by replay the same way:
it is never derived, so the machine's verdicts replay bit for bit beside the board's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np

from khfsm.domain.pose import LANDMARK_COLUMNS, NUM_LANDMARKS, WORLD_COLUMNS, Pose
from khfsm.domain.readiness import ReadinessReport


@dataclass(frozen=True, slots=True)
class Event:
    SCHEMA_VERSION: ClassVar[int] = 1
    DERIVED: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class SessionPrepared(Event):
    task: str
    capture_id: int
    level: int
    fps: float
    frames: int  # round(Duration * Fps): the test ends after this many assessed frames
    source: str  # camera URL or path, password redacted
    video_path: str
    engine_version: str
    rules_version: str
    models: Mapping[str, str] = field(default_factory=dict)  # model file -> sha256
    frame_width: int = 0
    frame_height: int = 0
    prepared_at: str = ""  # ISO 8601 wall-clock time, for people; the rules never read it


@dataclass(frozen=True, slots=True)
class SessionStarted(Event):
    started_at: str = ""  # ISO 8601 wall-clock time


@dataclass(frozen=True, slots=True)
class FrameObserved(Event):
    """One assessed frame: `frame` is its index in the recorded video."""

    frame: int
    keypoints: bytes | None  # float32 (33, 5) or None when no person was found
    world: bytes | None = None  # float32 (33, 3)
    score: float = 0.0
    # Presentation time (s) in the recorded video of the camera frame assessed; None in
    # sessions recorded before it was stored. The rules never read it.
    pts: float | None = None

    @classmethod
    def of(cls, frame: int, pose: Pose | None, pts: float | None = None) -> FrameObserved:
        if pose is None:
            return cls(frame=frame, keypoints=None, world=None, score=0.0, pts=pts)
        return cls(
            frame=frame,
            keypoints=np.ascontiguousarray(pose.landmarks, dtype=np.float32).tobytes(),
            world=np.ascontiguousarray(pose.world, dtype=np.float32).tobytes(),
            score=float(pose.score),
            pts=pts,
        )

    def pose(self) -> Pose | None:
        if self.keypoints is None:
            return None
        landmarks = np.frombuffer(self.keypoints, dtype=np.float32).reshape(
            NUM_LANDMARKS, LANDMARK_COLUMNS
        )
        world = (
            np.frombuffer(self.world, dtype=np.float32).reshape(NUM_LANDMARKS, WORLD_COLUMNS)
            if self.world is not None
            else np.zeros((NUM_LANDMARKS, WORLD_COLUMNS), dtype=np.float32)
        )
        return Pose(landmarks=landmarks, world=world, score=self.score)


@dataclass(frozen=True, slots=True)
class RepCounted(Event):
    DERIVED: ClassVar[bool] = True

    rep: int  # 1-based attempt number (= total after this rep)
    status: tuple[int, ...]  # (0,) for a valid rep, else its 3XY fault codes
    start_frame: int
    end_frame: int
    time: tuple[float, float]  # start and end in seconds since start, one decimal
    count: int  # valid reps so far
    total: int  # attempts so far
    measurements: Mapping[str, float] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.status == (0,)


@dataclass(frozen=True, slots=True)
class StopRequested(Event):
    """The operator's stop, taking effect before frame `frame` (= frames assessed so far)."""

    frame: int


@dataclass(frozen=True, slots=True)
class SourceFailed(Event):
    """The camera stopped delivering (status -4) or the pipeline broke (status -5)."""

    frame: int
    status: int
    message: str


@dataclass(frozen=True, slots=True)
class MotionViolated(Event):
    DERIVED: ClassVar[bool] = True

    frame: int
    code: str  # machine-readable reason, e.g. "stood_up"
    message: str  # what the operator reads
    measurements: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FaceChecked(Event):
    """The face check of a FaceDetection session."""

    similarity: float
    accepted: bool
    threshold: float
    filename: str  # saved face crop, relative to the media root
    message: str = ""


@dataclass(frozen=True, slots=True)
class ExamineeChanged(Event):
    """From frame `frame` on, the keypoints are of the person whose hip centre is at (x, y).

    Recorded just before that frame's `FrameObserved`. `reason` says why (the rule is in
    `khfsm.vision.examinee`): "chosen" (the first person followed: nearest the lane centre),
    "switched" (a clearly more central person replaced the first choice while settling),
    "regained" (the examinee found again where she was lost).
    """

    frame: int
    reason: str
    x: float  # hip centre, normalised image coordinates (0..1)
    y: float
    candidates: int  # people the detector saw in this frame (0: it did not run)


@dataclass(frozen=True, slots=True)
class ExamineeLost(Event):
    """From frame `frame` on, the examinee is not found: nobody's keypoints are observed, even
    when other people (`candidates`) are in view. (x, y): where she was last seen."""

    frame: int
    x: float
    y: float
    candidates: int


@dataclass(frozen=True, slots=True)
class SessionEnded(Event):
    DERIVED: ClassVar[bool] = True

    status: int  # an EndStatus value
    message: str
    frames: int  # assessed frames
    count: int
    total: int
    # Evidence, known only once the recording is closed: the live pipeline seals it in
    # before storing, and replay does not re-derive it.
    video_sha256: str | None = None
    video_bytes: int | None = None

    def sealed(self, sha256: str | None, size: int | None) -> SessionEnded:
        return replace(self, video_sha256=sha256, video_bytes=size)

    def without_evidence(self) -> SessionEnded:
        return replace(self, video_sha256=None, video_bytes=None)


@dataclass(frozen=True, slots=True)
class ReadinessReported(Event):
    """What the camera showed the operator at `moment` ("prepare" or "start"): an input the
    outside world observed, kept as it is by the session driver and never read by the rules
    (readiness informs the operator; it never refuses a prepare or a start)."""

    moment: str
    person: bool
    out_of_view: tuple[str, ...] = ()
    in_position: bool | None = None
    missing: tuple[str, ...] = ()
    view: str = "unknown"

    @classmethod
    def of(cls, moment: str, report: ReadinessReport) -> ReadinessReported:
        return cls(
            moment=moment,
            person=report.person,
            out_of_view=report.out_of_view,
            in_position=report.in_position,
            missing=report.missing,
            view=report.view,
        )

    def report(self) -> ReadinessReport:
        return ReadinessReport(
            person=self.person,
            out_of_view=self.out_of_view,
            in_position=self.in_position,
            missing=self.missing,
            view=self.view,
        )


@dataclass(frozen=True, slots=True)
class ReviewDecided(Event):
    """A reviewer's ruling on one repetition or on the terminal verdict, appended to the
    stream after the session's end (recorded events are never changed: a later decision on
    the same target supersedes an earlier one, both stay). `khfsm.domain.review` says what a
    ruling does to the result."""

    reviewer: str  # who decided (the reviewer's user name)
    at: str  # ISO 8601 wall-clock time of the decision, given by the caller
    rep: int | None  # the repetition ruled on (1-based, as `RepCounted.rep`); None: the verdict
    decision: str  # "uphold" or "overturn"
    reason: str  # why, in the reviewer's words

    @property
    def target(self) -> int | str:
        """The repetition's number, or "verdict"."""
        return "verdict" if self.rep is None else self.rep


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        SessionPrepared,
        SessionStarted,
        FrameObserved,
        RepCounted,
        StopRequested,
        SourceFailed,
        MotionViolated,
        FaceChecked,
        SessionEnded,
        ExamineeChanged,
        ExamineeLost,
        ReadinessReported,
        ReviewDecided,
    )
}
