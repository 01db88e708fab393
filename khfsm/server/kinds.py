"""Which kind of lane serves each installed task: an exercise (`Exercise`: frames judged by
its rules, `khfsm.server.pipeline`) or the face check (`FaceCheck`, `khfsm.server.face`).

Chosen by what the task *is* (the interface it implements), never by its name, so a site's
own exercise package gets an exercise lane, its push code and its fault codes like the
built-in five.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from khfsm.domain.exercise import Exercise
from khfsm.domain.face import FaceCheck
from khfsm.domain.task import Task
from khfsm.server.face import prepare_face
from khfsm.server.lanes import LaneKind
from khfsm.server.pipeline import prepare_exercise
from khfsm.server.protocol import ExercisePrepare, FacePrepare, FaceStart, Request

log = logging.getLogger(__name__)

EXERCISE_LANE = LaneKind(ExercisePrepare, Request, prepare_exercise)
FACE_CHECK_LANE = LaneKind(FacePrepare, FaceStart, prepare_face)


def lane_kinds(tasks: Mapping[str, Task]) -> dict[str, LaneKind]:
    """Task name -> its kind of lane, for every task this server can run."""
    kinds: dict[str, LaneKind] = {}
    for name, task in tasks.items():
        if isinstance(task, Exercise):
            kinds[name] = EXERCISE_LANE
        elif isinstance(task, FaceCheck):
            kinds[name] = FACE_CHECK_LANE
        else:
            log.error("task %r is installed but no kind of lane here can run it", name)
    return kinds
