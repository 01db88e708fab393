"""Looking at the camera before the start: pose on the frames the prepare probe read, then
the readiness report (`khfsm.exercises.common.readiness`) for the lane's task.

Readiness informs the operator and never refuses a prepare or a start, so a failure here
(the pose model, a task's start-position function) is logged and the ack goes without it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from khfsm.exercises.common.readiness import readiness

from khfsm.domain.pose import Pose
from khfsm.domain.readiness import ReadinessReport
from khfsm.server.context import LaneContext

log = logging.getLogger(__name__)

# The prepare probe keeps this many of the camera's first frames: the first with somebody in
# it is reported, so a person passing in front of the lens for a moment (or a first frame
# decoded grey before the keyframe) does not read as "no person".
READINESS_FRAMES = 3


async def look(
    ctx: LaneContext,
    lane: tuple[str, int],
    images: Sequence[np.ndarray],
    level: int,
    task: object,
) -> ReadinessReport | None:
    """The readiness report of the first of `images` that shows a person (of the last when
    none does); None when it could not be computed (logged)."""
    # The pose service tracks each lane between frames: the look has its own key, so that the
    # test's first frame is estimated as it would be without a look before it.
    key = ("readiness", *lane)
    report: ReadinessReport | None = None
    try:
        for image in images:
            height, width = image.shape[:2]
            estimate = await ctx.pose.estimate(key, image)
            pose = (
                None
                if estimate is None
                else Pose(landmarks=estimate.landmarks, world=estimate.world, score=estimate.score)
            )
            report = readiness(pose, width, height, level, task)
            if report.person:
                break
    except Exception:
        log.warning("lane %s/%s: readiness could not be computed", *lane, exc_info=True)
        return None
    finally:
        ctx.pose.forget(key)
    return report
