"""Judging attempts: each found attempt measured against the exam standard -> a RepJudged.

The second half of every `*-2` rule set (the first is `attempts.py`, which finds attempts).
A judge is a set of checks, one per fault code of the exercise; each check looks at the
attempt (from the detector) and the statistics the rules gathered while it lasted (worst
body line, hands away from the head, ...) and says whether that part of the standard was met,
with the measurement and the limit behind the decision. `verdict` turns the checks into the
one `RepJudged` the session stores and pushes at once: status (0,) when every check passed,
else the failing codes in check order, and every check's measurements (so an examinee or a
reviewer can see *why*: "min_elbow_deg 118 > depth_limit_deg 105").

Every attempt becomes exactly one verdict: `total` (attempts) and `count` (valid) are both
derived from the stream of verdicts by the session fold.

Usage::

    checks = (
        Check(NOT_LOW_ENOUGH, attempt.bottom <= limit, {"min_elbow_deg": attempt.bottom,
                                                         "depth_limit_deg": limit}),
        ...
    )
    verdicts.append(verdict(attempt, checks, view=state.views.view))

Readiness (is the examinee in the start position, and if not what is missing) is a pure
function per exercise returning `Readiness`, so the server can report it at `prepare` and
`start` without running a session.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from khfsm.domain.exercise import RepJudged
from khfsm.domain.pose import Pose

from .attempts import Attempt
from .geometry import rnd
from .world import View


@dataclass(frozen=True, slots=True)
class Check:
    """One part of the standard: `code` (3XY) fails the attempt unless `passed`."""

    code: int
    passed: bool
    measurements: Mapping[str, float] = field(default_factory=dict)


def verdict(
    attempt: Attempt,
    checks: Sequence[Check],
    *,
    view: View,
    end_frame: int | None = None,
    extra: Mapping[str, float] | None = None,
) -> RepJudged:
    """The stored verdict of `attempt`: status (0,) or its failed codes, with every check's
    measurements, the detector's view of the attempt and the session's camera view."""
    codes = tuple(c.code for c in checks if not c.passed)
    measurements: dict[str, float] = {}
    for check in checks:
        for key, value in check.measurements.items():
            if math.isfinite(value):
                measurements[key] = rnd(value, 2)
    for key, value in (extra or {}).items():
        if math.isfinite(value):
            measurements[key] = rnd(value, 2)
    measurements["camera_view"] = float(view.value)
    end = attempt.end_frame if end_frame is None else end_frame
    return RepJudged(
        start_frame=attempt.start_frame,
        end_frame=max(end, attempt.start_frame),
        status=codes or (0,),
        measurements=measurements,
    )


@dataclass(frozen=True, slots=True)
class Readiness:
    """What the camera sees before (or at) the start: `ready` when the examinee is in the
    exercise's start position; otherwise `missing` says what is not there, in words an
    operator can act on ("no person", "ankles not in view", "not lying on the back")."""

    ready: bool
    missing: tuple[str, ...] = ()
    view: View = View.UNKNOWN


class StartPosition(Protocol):
    """What each `*-2` exercise module exposes as `start_position(pose, width, height)`."""

    def __call__(self, pose: Pose | None, width: int = 0, height: int = 0) -> Readiness: ...
