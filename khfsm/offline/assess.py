"""A whole session over a video file or its keypoints, stored (what `khfsm assess` runs).

The session is run by the domain's one driver (`khfsm.domain.run.judge_poses`); this module
only supplies what offline assessment knows about it (the video, the level, the models) and
hands the events to a recorder.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import khfsm
from khfsm.domain.events import Event, SessionPrepared
from khfsm.domain.exercise import Exercise
from khfsm.domain.fold import SessionSummary, fold
from khfsm.domain.run import judge_poses
from khfsm.offline.keypoints import Keypoints, ReportProgress, extract_keypoints
from khfsm.vision.manifest import pose_model_hashes


class Appender(Protocol):
    """The part of the store's recorder (`khfsm.store.EventRecorder`) assessment needs."""

    def append(self, session_id: str, first_seq: int, events: Sequence[Event]) -> object: ...


def judge_keypoints(
    keypoints: Keypoints,
    exercise: Exercise,
    level: int,
    *,
    source: str = "",
    models: dict[str, str] | None = None,
    recorder: Appender | None = None,
    session_id: str | None = None,
) -> tuple[str, SessionSummary, list[Event]]:
    """Run one whole session over extracted keypoints; returns (id, summary, events).

    The session is prepared for exactly the sampled frames, so it ends by time-up on the
    last one unless the rules end it earlier.
    """
    session_id = session_id or uuid.uuid4().hex
    prepared = SessionPrepared(
        task=exercise.task,
        capture_id=0,
        level=level,
        fps=keypoints.fps,
        frames=len(keypoints),
        source=source,
        video_path="",
        engine_version=khfsm.__version__,
        rules_version=exercise.rules_version,
        models=dict(models or {}),
        frame_width=keypoints.frame_width,
        frame_height=keypoints.frame_height,
    )
    who = f"assessment of {source or 'a video'}"
    before = {event.frame: [event] for event in keypoints.examinee}
    events = judge_poses(exercise, prepared, keypoints.poses(), before=before, who=who)
    if recorder is not None:
        recorder.append(session_id, 0, events)
    return session_id, fold(events), events


def assess_video(
    path: str | Path,
    task: str,
    level: int,
    fps: float,
    recorder: Appender | None,
    progress: ReportProgress | None = None,
) -> tuple[str, SessionSummary]:
    """Assess a whole video file under `task`'s rules and store the session."""
    from khfsm.registry import get_exercise

    exercise = get_exercise(task)
    keypoints = extract_keypoints(path, fps, progress=progress)
    session_id, summary, _ = judge_keypoints(
        keypoints,
        exercise,
        level,
        source=str(path),
        models=pose_model_hashes(),
        recorder=recorder,
    )
    return session_id, summary
