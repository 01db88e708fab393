"""The status codes the tablet sees: the one table of them in the project.

| code | meaning                                                          |
|------|------------------------------------------------------------------|
| 0    | valid repetition                                                 |
| 3XY  | invalid repetition: X = exercise digit, Y = fault (see exercises)|
| 0/1/2| the face check's outcome: match / mismatch / no usable face      |
| -1   | stopped by the operator                                          |
| -2   | time is up (normal end)                                          |
| -3   | stopped due to unallowed motion                                  |
| -4   | video source lost                                                |
| -5   | internal error                                                   |
| -6   | the server shut down during the test (SIGTERM, orderly)          |
| -7   | the server stopped unexpectedly (found open at the next start)   |

Each task declares its own digit X (`Task.code_digit`: 1 pushup, 2 situp, 3 pullup, 4 squat,
6 armhang; a site's plug-in exercise picks a free one) and its own 3XY faults with
operator-facing messages; `fault_code` builds them. The face check's outcome codes are
declared by `khfsm.domain.face`.
"""

from __future__ import annotations

from enum import IntEnum

VALID = 0


class EndStatus(IntEnum):
    """How a session ended; the value is the code in the terminal push."""

    STOPPED = -1
    TIME_UP = -2
    UNALLOWED_MOTION = -3
    SOURCE_LOST = -4
    INTERNAL_ERROR = -5
    # Beyond the seed system's codes: an ending the old server had no word for. Tablets treat
    # any negative code as the end of the test; the message says what happened.
    SERVER_SHUTDOWN = -6
    SERVER_CRASHED = -7

    @property
    def message(self) -> str:
        return END_MESSAGES[self]


END_MESSAGES: dict[EndStatus, str] = {
    EndStatus.STOPPED: "stopped by the operator",
    EndStatus.TIME_UP: "time is up",
    EndStatus.UNALLOWED_MOTION: "stopped due to unallowed motion",
    EndStatus.SOURCE_LOST: "video source lost",
    EndStatus.INTERNAL_ERROR: "internal error",
    EndStatus.SERVER_SHUTDOWN: "server shutting down",
    EndStatus.SERVER_CRASHED: "server stopped unexpectedly",
}


def fault_code(exercise_digit: int, fault: int) -> int:
    """The 3XY code of fault Y (1..9) of exercise X."""
    if not 1 <= exercise_digit <= 9 or not 1 <= fault <= 9:
        raise ValueError(f"fault code out of range: exercise {exercise_digit}, fault {fault}")
    return 300 + 10 * exercise_digit + fault


def is_fault(code: int) -> bool:
    return 300 <= code <= 399
