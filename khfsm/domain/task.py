"""What every task of a lane declares: an exercise (`exercises/`) and the face check alike.

A task is found by the registry (`khfsm.registry`) through the `khfsm.exercises` entry-point
group, so a site's own package brings everything its sessions need: the Task name the tablet
sends, the rules version recorded in each session, the push code that prefixes its pushes,
the digit X of its 3XY fault codes and the message of each of its own status codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable


@runtime_checkable
class Task(Protocol):
    """The identity and codes of a task; `khfsm.domain.exercise.Exercise` adds the rules."""

    @property
    def task(self) -> str:
        """The tablet's Task name, e.g. "pushup" or "FaceDetection"."""
        ...

    @property
    def rules_version(self) -> str:
        """Bumped whenever a change could alter a verdict; recorded in every session."""
        ...

    @property
    def push_code(self) -> int:
        """The code a push of this task carries when the tablet numbers its frames: the task
        number repeated four times (FaceDetection 1111, pushup 2222, ...)."""
        ...

    @property
    def code_digit(self) -> int | None:
        """X of the 3XY fault codes (1..9; pushup 1, situp 2, ...); None for a task that
        judges no repetitions (the face check)."""
        ...

    @property
    def faults(self) -> Mapping[int, str]:
        """Status code -> operator-facing message of every result of this task other than a
        valid repetition (0) and the end statuses: an exercise's 3XY faults, the face check's
        mismatch and no-usable-face outcomes."""
        ...
