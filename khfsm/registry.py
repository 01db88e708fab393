"""Which exercises are installed: the `khfsm.exercises` entry-point group.

A site adds its own exercise by shipping a package that declares an entry point in this
group pointing at an object implementing `khfsm.domain.exercise.Exercise`; the engine is not
edited. The built-in five are declared in khfsm's own pyproject.toml.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.metadata import entry_points

from khfsm.domain.errors import DomainError
from khfsm.domain.exercise import Exercise

GROUP = "khfsm.exercises"
FACE_TASK = "FaceDetection"

log = logging.getLogger(__name__)


class UnknownExercise(DomainError):
    pass


@cache
def installed_exercises() -> dict[str, Exercise]:
    found: dict[str, Exercise] = {}
    for entry in entry_points(group=GROUP):
        try:
            exercise = entry.load()
        except Exception:
            log.exception(
                "exercise plug-in %r could not be loaded; it is not available", entry.name
            )
            continue
        if not isinstance(exercise, Exercise):
            log.error("exercise plug-in %r does not implement the Exercise interface", entry.name)
            continue
        found[exercise.task] = exercise
    return found


def get_exercise(task: str) -> Exercise:
    exercises = installed_exercises()
    try:
        return exercises[task]
    except KeyError:
        known = ", ".join(sorted([*exercises, FACE_TASK])) or "none installed"
        raise UnknownExercise(f"unknown Task {task!r}; this server knows: {known}") from None
