"""The `*-2` rules framework in one import: find every attempt, judge it, in 3-D.

How to write a `<task>-2` rule module (see `exercises/pushup2.py` and `exercises/situp2.py`):

1. **Identity.** A class with `task`, `rules_version` ("<task>-2"), `faults` (3XY -> message),
   `code_digit` (the X of 3XY) and `push_code` (the task's push code); the module exports
   `EXERCISE = <Class>()` and is registered in pyproject.toml as an additional entry point
   `<task>-2 = "khfsm.exercises.<module>:EXERCISE"` beside the released `<task> = ...` one.

2. **Geometry** (`world.py`). `skel = read_skeleton(pose, config.frame_width,
   config.frame_height)` gives the frame's landmarks in 3-D (metres) with the image
   visibility. Measure joints with `skel.pair_angle(LEFT_TRIPLE, RIGHT_TRIPLE)` (3-D angle of
   the side the camera sees, both averaged when both are seen; the image-plane angle only
   where the world estimate is degenerate: the module's one fallback rule) and orientation
   with `skel.torso_from_vertical()` / `skel.body_from_vertical()` (degrees from "up"; the
   camera's down is taken as gravity, so keep orientation thresholds half-way between the
   postures they separate). `skel.view()` classifies the camera view per frame; keep a
   `ViewVote` in the state (`votes.add(skel.view())` on frames in position) and record
   `votes.view` in every verdict (the `verdict` helper does it as `camera_view`).

3. **Attempts** (`attempts.py`). Choose ONE 1-D signal that *decreases* toward the goal of
   the movement (negate it otherwise) and an `AttemptSpec`: `min_excursion` from body
   mechanics (the smallest movement that can be a deliberate attempt; above the signal's
   jitter) and `complete_at`, the standard's rest value (lockout, lying flat, full hang) so
   that an attempt reaching it ends at once as complete. Keep an `AttemptDetector` in the
   frozen state and step it every frame with the signal, or None when it cannot be measured
   (nobody, not in position, landmarks hidden): `detector, ev = state.detector.step(spec,
   frame, value, config.fps)`. Then
   - `ev.started`: reset the per-attempt statistics;
   - `ev.turned`: the attempt's extreme is known (judge here to count "at the top");
   - `ev.ended`: judge it here (unless already judged at the turn); `ended.complete` says
     whether it came back to `complete_at`, `ended.from_rest` whether it started there;
   - `ev.abandoned`: lost (dropout, cut): nothing to judge, reset the statistics.
   In `finish`, `state.detector.current(spec)` is the attempt in progress, if any.

4. **Judge** (`judging.py`). One `Check(code, passed, measurements)` per fault, from the
   attempt (`bottom`, `top`, `end`, `complete`, `from_rest`) and the statistics gathered while
   it lasted; `verdict(attempt, checks, view=votes.view)` makes the `RepJudged` (status (0,)
   or the failed codes, every measurement with its limit). Every attempt gets exactly one
   verdict: `total` counts them, `count` the valid ones.

5. **Thresholds.** Every constant comes from the exam standard or body mechanics, with the
   reason in a comment; per-level tables through `levels.per_level`. A constant estimated
   from footage (a pose model bias) needs a script in `benchmarks/` that measures it and a
   leave-one-clip-out range that shows no single clip moves it.

6. **Unallowed motion (-3)** ends an exam: keep only rules no camera angle can fake
   (`rules.Presence` for an empty lane, `world.is_standing` for standing up once under way).

7. **Readiness.** Export `start_position(pose, width=0, height=0, level=5) -> Readiness`:
   `ready`, the `missing` items in operator words, and the frame's camera view.

8. **Tests.** Render the exercise from several cameras with `tests/exercises/kinematics3d.py`
   (pinhole projection + world landmarks) and assert identical attempts and verdicts; run
   `benchmarks/eval_clips.py --rules 2` for the per-clip, per-view figures.
"""

from __future__ import annotations

from .attempts import Attempt, AttemptDetector, AttemptSpec, Events
from .judging import Check, Readiness, StartPosition, verdict
from .world import (
    Skeleton,
    View,
    ViewVote,
    is_standing,
    read_skeleton,
    view_of,
)

__all__ = [
    "Attempt",
    "AttemptDetector",
    "AttemptSpec",
    "Check",
    "Events",
    "Readiness",
    "Skeleton",
    "StartPosition",
    "View",
    "ViewVote",
    "is_standing",
    "read_skeleton",
    "verdict",
    "view_of",
]
