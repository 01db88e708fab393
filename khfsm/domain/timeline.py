"""Which assessed frames a source frame stands for: the one sampling rule of the project,
and how many frames a test lasts.

Assessed frame k (at time k / fps) is the first source frame whose timestamp is at or after
k / fps. Offline assessment and the live camera stage both take frames by this rule, so a
file used as a camera yields exactly the frames `khfsm assess` judges.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# Keeps exact multiples (e.g. 30 -> 15 fps) from falling on the wrong side through rounding.
TIME_EPSILON = 1e-9


def assessed_until(next_frame: int, fps: float, timestamp: float) -> int:
    """The (exclusive) end of the assessed frames, from `next_frame` on, that a source frame
    at `timestamp` seconds stands for; `next_frame` itself when it stands for none."""
    frame = next_frame
    while frame / fps <= timestamp + TIME_EPSILON:
        frame += 1
    return frame


def frame_budget(duration_s: float, fps: float) -> int:
    """round(Duration × Fps): how many assessed frames a test lasts, halves rounded up.

    Computed on the decimal numbers the tablet wrote, not on their binary product: 1.15 s at
    10 fps is 11.5 frames, rounded to 12, although 1.15 * 10 is 11.499999999999998 in
    floating point; and 4.5 is 5, where Python's round() would give the even 4.
    """
    exact = Decimal(repr(duration_s)) * Decimal(repr(fps))
    return int(exact.to_integral_value(rounding=ROUND_HALF_UP))
