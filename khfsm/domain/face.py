"""The face check ("FaceDetection"): is the person at the lane the enrolled candidate?

A task like an exercise, registered through the same entry-point group, with its own rules
version and outcome codes. Its work (reading the photo or stream, the face model) is done
outside the domain and arrives as one `FaceChecked` input; the session ends on it with
status -2 (a normal end) and the outcome below is what the tablet is pushed:

| code | outcome                                                              |
|------|----------------------------------------------------------------------|
| 0    | match: similarity >= threshold                                       |
| 1    | mismatch: similarity < threshold                                     |
| 2    | no usable face within Duration (none, or several)                    |
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import ClassVar

from khfsm.domain.events import FaceChecked

TASK = "FaceDetection"
RULES_VERSION = "face-1"
PUSH_CODE = 1111


class FaceOutcome(IntEnum):
    MATCH = 0
    MISMATCH = 1
    NO_FACE = 2

    @property
    def message(self) -> str:
        return OUTCOME_MESSAGES[self]


OUTCOME_MESSAGES: Mapping[FaceOutcome, str] = {
    FaceOutcome.MATCH: "match",
    FaceOutcome.MISMATCH: "mismatch",
    FaceOutcome.NO_FACE: "no usable face",
}


def outcome_of(check: FaceChecked) -> FaceOutcome:
    """The outcome a recorded check stands for. A check that found no usable face saved no
    crop (its `filename` is empty); one that found a face compared it with the candidate."""
    if check.accepted:
        return FaceOutcome.MATCH
    return FaceOutcome.MISMATCH if check.filename else FaceOutcome.NO_FACE


def describe(check: FaceChecked) -> str:
    """The outcome in words with the similarity behind it, e.g. "match (similarity 0.812)"."""
    outcome = outcome_of(check)
    if outcome is FaceOutcome.NO_FACE:
        return outcome.message
    return f"{outcome.message} (similarity {check.similarity:.3f}, threshold {check.threshold:g})"


class FaceCheck:
    """The face check as a `khfsm.domain.task.Task`."""

    task = TASK
    rules_version = RULES_VERSION
    push_code = PUSH_CODE
    code_digit: ClassVar[int | None] = None  # it judges no repetitions: no 3XY codes
    faults: ClassVar[Mapping[int, str]] = {
        int(outcome): outcome.message for outcome in FaceOutcome if outcome is not FaceOutcome.MATCH
    }

    def outcome(self, check: FaceChecked) -> FaceOutcome:
        return outcome_of(check)


FACE_CHECK = FaceCheck()
