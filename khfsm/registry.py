"""Which tasks are installed: the `khfsm.exercises` entry-point group.

A site adds its own exercise by shipping a package that declares an entry point in this
group pointing at an object implementing `khfsm.domain.exercise.Exercise`; the engine is not
edited. The built-in five exercises and the face check (`khfsm.domain.face`) are declared in
khfsm's own pyproject.toml the same way. Each task brings its own codes (`Task.push_code`,
`Task.code_digit`); a plug-in whose codes collide with another task's is refused with a
logged reason, so no two tasks ever share a push code or a 3XY digit.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TypeVar

from khfsm.domain.codes import fault_code
from khfsm.domain.errors import DomainError
from khfsm.domain.exercise import Exercise
from khfsm.domain.task import Task

GROUP = "khfsm.exercises"
DISTRIBUTION = "khfsm"

log = logging.getLogger(__name__)

T = TypeVar("T", bound=Task)


class UnknownTask(DomainError):
    """A task, or a rules version of one, that is not installed."""


def version_order(rules_version: str) -> tuple[int, str]:
    """Sort key of a rules version "<task>-<n>": by its release number n, then by name."""
    _, _, number = rules_version.rpartition("-")
    return (int(number) if number.isdigit() else -1, rules_version)


@cache
def installed_tasks() -> dict[str, dict[str, Task]]:
    """Task name -> rules version -> task, for every installed release of every task.

    Every released rules version stays installed (a site never loses the rules a stored
    session was judged by): each is its own entry point, and a session is replayed under the
    version its `SessionPrepared` names. New sessions take the newest version of their task.
    """
    found: dict[str, dict[str, Task]] = {}
    for entry in sorted(entry_points(group=GROUP), key=_load_order):
        try:
            task = entry.load()
        except Exception:
            log.exception("task plug-in %r could not be loaded; it is not available", entry.name)
            continue
        problem = _refusal(task, found)
        if problem:
            log.error("task plug-in %r is not available: %s", entry.name, problem)
            continue
        found.setdefault(task.task, {})[task.rules_version] = task
    return found


def _load_order(entry: EntryPoint) -> tuple[bool, str, str]:
    """khfsm's own tasks first, so that a plug-in never displaces one of them; then by name,
    so that which of two colliding plug-ins is kept does not depend on the file system."""
    own = entry.dist is not None and entry.dist.name == DISTRIBUTION
    return (not own, entry.name, entry.value)


def _refusal(task: object, found: dict[str, dict[str, Task]]) -> str:
    """Why `task` cannot be installed beside the tasks `found` so far ("" if it can)."""
    if not isinstance(task, Task):
        return "it does not implement the Task interface (task, rules_version, push_code, ...)"
    if task.rules_version in found.get(task.task, {}):
        return f"it repeats {task.task} rules {task.rules_version}; the first one is kept"
    if isinstance(task, Exercise) or task.code_digit is not None:
        digit = task.code_digit
        if not isinstance(digit, int) or not 1 <= digit <= 9:
            return f"its code digit {digit!r} is not 1 to 9"
        for code in task.faults:
            if fault_code(digit, code % 10) != code:
                return f"its fault code {code} is not 3{digit}Y (its code digit is {digit})"
    for other, versions in found.items():
        if other == task.task:
            continue
        known = next(iter(versions.values()))
        if known.push_code == task.push_code:
            return f"its push code {task.push_code} is already {other}'s"
        if task.code_digit is not None and known.code_digit == task.code_digit:
            return f"its code digit {task.code_digit} (3{task.code_digit}Y) is already {other}'s"
    return ""


def installed_versions() -> dict[str, dict[str, Exercise]]:
    """Exercise name -> rules version -> exercise: the installed tasks that judge frames."""
    return {
        name: exercises
        for name, versions in installed_tasks().items()
        if (exercises := {v: t for v, t in versions.items() if isinstance(t, Exercise)})
    }


def installed_exercises() -> dict[str, Exercise]:
    """Exercise name -> the newest installed rules for it (what a new session is judged by)."""
    return {name: _newest(versions) for name, versions in installed_versions().items()}


def get_task(task: str, rules_version: str | None = None) -> Task:
    """The task named `task`: its newest release, or exactly `rules_version` (for replay)."""
    return _lookup(installed_tasks(), task, rules_version)


def get_exercise(task: str, rules_version: str | None = None) -> Exercise:
    """The rules for exercise `task`: the newest release, or exactly `rules_version`."""
    if task in installed_tasks() and task not in installed_versions():
        raise UnknownTask(f"{task} is not an exercise; it judges no repetitions")
    return _lookup(installed_versions(), task, rules_version)


def _lookup(installed: dict[str, dict[str, T]], task: str, rules_version: str | None) -> T:
    versions = installed.get(task)
    if not versions:
        known = ", ".join(sorted(installed_tasks())) or "none installed"
        raise UnknownTask(f"unknown Task {task!r}; this server knows: {known}")
    if rules_version is None:
        return _newest(versions)
    try:
        return versions[rules_version]
    except KeyError:
        known = ", ".join(sorted(versions, key=version_order))
        raise UnknownTask(
            f"{task} rules {rules_version!r} are not installed; installed: {known}"
        ) from None


def _newest(versions: dict[str, T]) -> T:
    return versions[max(versions, key=version_order)]
