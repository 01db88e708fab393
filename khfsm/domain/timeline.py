"""Which assessed frames a source frame stands for: the one sampling rule of the project.

Assessed frame k (at time k / fps) is the first source frame whose timestamp is at or after
k / fps. Offline assessment and the live camera stage both take frames by this rule, so a
file used as a camera yields exactly the frames `khfsm assess` judges.
"""

from __future__ import annotations

# Keeps exact multiples (e.g. 30 -> 15 fps) from falling on the wrong side through rounding.
TIME_EPSILON = 1e-9


def assessed_until(next_frame: int, fps: float, timestamp: float) -> int:
    """The (exclusive) end of the assessed frames, from `next_frame` on, that a source frame
    at `timestamp` seconds stands for; `next_frame` itself when it stands for none."""
    frame = next_frame
    while frame / fps <= timestamp + TIME_EPSILON:
        frame += 1
    return frame
