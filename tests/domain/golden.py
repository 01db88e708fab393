"""Golden session histories: building them, and reading/writing them as JSON lines.

Each line is one stored record: {"seq", "type", "version", "payload", "blob" (base64)}.
Regenerate with `python -m tests.domain.golden` (only when the schema deliberately changes).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from khfsm.domain.codec import EventRecord, decode, encode
from khfsm.domain.events import (
    Event,
    FaceChecked,
    FrameObserved,
    SessionPrepared,
    SessionStarted,
    SourceFailed,
    StopRequested,
)
from khfsm.domain.face import FACE_CHECK
from khfsm.domain.run import judge_poses, observations, run_session
from tests.domain.reference_exercise import (
    ABSENT_FRAMES,
    EXERCISE,
    pose_with_wrist_height,
    wrist_heights,
)

GOLDEN_DIR = Path(__file__).parent / "golden"
IDENTICAL = GOLDEN_DIR / "reference_identical.jsonl"
ALTERED = GOLDEN_DIR / "reference_altered.jsonl"
# In the altered history, the keypoints of this frame (in the middle of rep 2) were edited
# after the fact to show the wrist down: replay must end rep 2 right there, where the record
# shows the next frame instead.
ALTERED_FRAME = 16


def prepared(frames: int = 200) -> SessionPrepared:
    return SessionPrepared(
        task=EXERCISE.task,
        capture_id=2,
        level=5,
        fps=20.0,
        frames=frames,
        source="rtsp://admin:***@192.0.2.10:554/lane",
        video_path="video/golden.mp4",
        engine_version="0.1.0",
        rules_version=EXERCISE.rules_version,
        models={"pose_landmark_full_dynbatch.onnx": "75302bdc"},
        frame_width=640,
        frame_height=480,
        prepared_at="2026-11-21T08:00:00+00:00",
    )


def build_session(
    peaks: list[float], *, stop: bool = True, frames: int = 200, absent_after: int = 0
) -> list[Event]:
    heights = wrist_heights(peaks) + [-1.0] * absent_after  # -1: nobody in view
    # deterministic noise, well inside the hysteresis
    poses = [
        pose_with_wrist_height(height, float(np.sin(index * 1.7))) if height >= 0 else None
        for index, height in enumerate(heights)
    ]
    started = SessionStarted(started_at="2026-11-21T08:00:01+00:00")
    if stop:
        return judge_poses(EXERCISE, prepared(frames), poses, started=started, who="capture 2")
    inputs = [prepared(frames), started, *observations(poses)]
    return run_session(EXERCISE, inputs, who="capture 2")


def golden_history() -> list[Event]:
    return build_session([80.0, 75.0, 40.0, 90.0])


def altered_history() -> list[Event]:
    events = golden_history()
    target = next(
        i for i, e in enumerate(events) if isinstance(e, FrameObserved) and e.frame == ALTERED_FRAME
    )
    original = events[target]
    assert isinstance(original, FrameObserved)
    low = pose_with_wrist_height(0.0)
    events[target] = replace(original, keypoints=FrameObserved.of(ALTERED_FRAME, low).keypoints)
    return events


def violated_history() -> list[Event]:
    """Two reps, then nobody in view: stopped for unallowed motion (-3)."""
    return build_session([80.0, 40.0], absent_after=ABSENT_FRAMES + 5)


def time_up_history() -> list[Event]:
    """Three reps; the test ends on time (-2) at its last frame."""
    return build_session([80.0, 90.0, 40.0], frames=len(wrist_heights([80.0, 90.0, 40.0])))


def source_lost_history() -> list[Event]:
    """One rep, then the camera stops sending frames (-4)."""
    poses = [pose_with_wrist_height(h) for h in wrist_heights([80.0, 70.0])][:12]
    inputs = [
        prepared(),
        SessionStarted(started_at="2026-11-21T08:00:01+00:00"),
        *observations(poses),
        SourceFailed(frame=len(poses), status=-4, message="camera 2 sent no frame for 5 s"),
    ]
    return run_session(EXERCISE, inputs, who="capture 2")


def stopped_before_start_history() -> list[Event]:
    """Prepared, then stopped by the operator before it started (-1, no frame)."""
    return run_session(EXERCISE, [prepared(), StopRequested(frame=0)], who="capture 2")


def face_history(accepted: bool, found: bool = True) -> list[Event]:
    """A face check: prepared, started, checked, ended."""
    similarity = 0.8123 if accepted else (0.2041 if found else 0.0)
    words = "matches" if accepted else "does not match"
    message = (
        f"the face {words} the enrolled candidate (similarity {similarity:.3f}, threshold 0.55)"
        if found
        else "no usable face within 10 s: no face found"
    )
    inputs = [
        SessionPrepared(
            task=FACE_CHECK.task,
            capture_id=3,
            level=0,
            fps=0.0,
            frames=0,
            source="photos/candidate.jpg",
            video_path="",
            engine_version="0.1.0",
            rules_version=FACE_CHECK.rules_version,
            models={"mobilefacenet_dynbatch.onnx": "5ab1c0de"},
            prepared_at="2026-11-21T08:00:00+00:00",
        ),
        SessionStarted(started_at="2026-11-21T08:00:01+00:00"),
        FaceChecked(
            similarity=similarity,
            accepted=accepted,
            threshold=0.55,
            filename="faces/20261121/08_00_02_candidate_0a1b2c3d.jpg" if found else "",
            message=message,
        ),
    ]
    return run_session(FACE_CHECK, inputs, who="capture 3")


# Every golden history: file name -> how the engine builds it. All but the altered one replay
# identically; the fold, the store's summary columns and the CLI must agree on each.
HISTORIES: dict[str, Callable[[], list[Event]]] = {
    IDENTICAL.name: golden_history,
    ALTERED.name: altered_history,
    "reference_violated.jsonl": violated_history,
    "reference_time_up.jsonl": time_up_history,
    "reference_source_lost.jsonl": source_lost_history,
    "reference_stopped_before_start.jsonl": stopped_before_start_history,
    "face_match.jsonl": lambda: face_history(accepted=True),
    "face_mismatch.jsonl": lambda: face_history(accepted=False),
    "face_no_face.jsonl": lambda: face_history(accepted=False, found=False),
}


def write_jsonl(path: Path, events: list[Event]) -> None:
    with path.open("w") as out:
        for seq, event in enumerate(events):
            record = encode(event)
            line = {
                "seq": seq,
                "type": record.type,
                "version": record.version,
                "payload": record.payload,
                "blob": None if record.blob is None else base64.b64encode(record.blob).decode(),
            }
            out.write(json.dumps(line) + "\n")


def read_jsonl(path: Path) -> list[Event]:
    events = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        blob = None if row["blob"] is None else base64.b64decode(row["blob"])
        events.append(decode(EventRecord(row["type"], row["version"], row["payload"], blob)))
    return events


if __name__ == "__main__":
    GOLDEN_DIR.mkdir(exist_ok=True)
    for name, build in HISTORIES.items():
        write_jsonl(GOLDEN_DIR / name, build())
        print(f"wrote {GOLDEN_DIR / name}")
