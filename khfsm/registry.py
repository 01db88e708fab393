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


def version_order(rules_version: str) -> tuple[int, str]:
    """Sort key of a rules version "<task>-<n>": by its release number n, then by name."""
    _, _, number = rules_version.rpartition("-")
    return (int(number) if number.isdigit() else -1, rules_version)


@cache
def installed_versions() -> dict[str, dict[str, Exercise]]:
    """Task -> rules version -> exercise, for every installed release.

    Every released rules version stays installed (a site never loses the rules a stored
    session was judged by): each is its own entry point, and a session is replayed under the
    version its `SessionPrepared` names. New sessions take the newest version of their task.
    """
    found: dict[str, dict[str, Exercise]] = {}
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
        versions = found.setdefault(exercise.task, {})
        if exercise.rules_version in versions:
            log.error(
                "exercise plug-in %r repeats %s rules %s; the first one is kept",
                entry.name,
                exercise.task,
                exercise.rules_version,
            )
            continue
        versions[exercise.rules_version] = exercise
    return found


def installed_exercises() -> dict[str, Exercise]:
    """Task -> the newest installed rules for it (what a new session is judged by)."""
    return {
        task: versions[max(versions, key=version_order)]
        for task, versions in installed_versions().items()
    }


def get_exercise(task: str, rules_version: str | None = None) -> Exercise:
    """The rules for `task`: the newest release, or exactly `rules_version` (for replay)."""
    versions = installed_versions().get(task)
    if not versions:
        known = ", ".join(sorted([*installed_versions(), FACE_TASK])) or "none installed"
        raise UnknownExercise(f"unknown Task {task!r}; this server knows: {known}")
    if rules_version is None:
        return versions[max(versions, key=version_order)]
    try:
        return versions[rules_version]
    except KeyError:
        known = ", ".join(sorted(versions, key=version_order))
        raise UnknownExercise(
            f"{task} rules {rules_version!r} are not installed; installed: {known}"
        ) from None
