"""Readiness before the start: a pose (or nobody) -> the report the operator reads at
`prepare` and `start` (`khfsm.domain.readiness.ReadinessReport`).

One pure function for every task: whether a person is in view (`present`, the rules' own
test), which body parts the picture does not show (a part is in view when either side's
landmark is seen inside the frame, as the rules see it), the camera view from the body's 3-D
orientation (`world.py`), and, for a task that declares a start position (every `*-2`
exercise: `start_position(pose, width, height, level) -> Readiness`), whether it is taken
and what is missing. A task without one (the `*-1` rules, a plug-in) gets the rest.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from khfsm.domain.pose import Landmark as L
from khfsm.domain.pose import Pose
from khfsm.domain.readiness import ReadinessReport

from .judging import Readiness
from .rules import present
from .world import View, read_skeleton

# Each part of `BODY_PARTS` and the landmarks that show it (either one seen is enough: a
# side view hides the far limbs, which the rules never need both of).
PART_LANDMARKS: dict[str, tuple[int, ...]] = {
    "head": (L.NOSE, L.LEFT_EYE, L.RIGHT_EYE, L.LEFT_EAR, L.RIGHT_EAR),
    "shoulders": (L.LEFT_SHOULDER, L.RIGHT_SHOULDER),
    "elbows": (L.LEFT_ELBOW, L.RIGHT_ELBOW),
    "wrists": (L.LEFT_WRIST, L.RIGHT_WRIST),
    "hips": (L.LEFT_HIP, L.RIGHT_HIP),
    "knees": (L.LEFT_KNEE, L.RIGHT_KNEE),
    "ankles": (L.LEFT_ANKLE, L.RIGHT_ANKLE),
}


@runtime_checkable
class HasStartPosition(Protocol):
    """A task whose rules declare their start position (the `*-2` exercises)."""

    def start_position(
        self, pose: Pose | None, width: int = 0, height: int = 0, level: int = 5
    ) -> Readiness: ...


def readiness(
    pose: Pose | None, width: int, height: int, level: int, task: object | None = None
) -> ReadinessReport:
    """What the camera shows of `pose` in a `width` x `height` frame, judged against `task`'s
    start position at `level` when it declares one."""
    rules = task if isinstance(task, HasStartPosition) else None
    skeleton = read_skeleton(pose, width, height)
    if skeleton is None or not present(skeleton.image):
        return ReadinessReport.nobody(judged=rules is not None)
    out_of_view = tuple(
        part
        for part, landmarks in PART_LANDMARKS.items()
        if not any(skeleton.seen(landmark) for landmark in landmarks)
    )
    view = skeleton.view()
    if rules is None:
        return ReadinessReport(True, out_of_view, None, (), _view_name(view))
    verdict = rules.start_position(pose, width, height, level)
    return ReadinessReport(
        person=True,
        out_of_view=out_of_view,
        in_position=verdict.ready,
        missing=verdict.missing,
        view=_view_name(view),
    )


def _view_name(view: View) -> str:
    return view.name.lower()
