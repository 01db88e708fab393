"""Golden session histories: building them, and reading/writing them as JSON lines.

Each line is one stored record: {"seq", "type", "version", "payload", "blob" (base64)}.
Regenerate with `python -m tests.domain.golden` (only when the schema deliberately changes).
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from khfsm.domain.codec import EventRecord, decode, encode
from khfsm.domain.events import Event, FrameObserved, SessionPrepared, SessionStarted
from khfsm.domain.run import judge_poses, observations, run_session
from tests.domain.reference_exercise import EXERCISE, pose_with_wrist_height, wrist_heights

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


def build_session(peaks: list[float], *, stop: bool = True, frames: int = 200) -> list[Event]:
    heights = wrist_heights(peaks)
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
    write_jsonl(IDENTICAL, golden_history())
    write_jsonl(ALTERED, altered_history())
    print(f"wrote {IDENTICAL} and {ALTERED}")
