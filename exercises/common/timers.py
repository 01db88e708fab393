"""How long a condition has held, in frames (time is frame / fps, never the wall clock)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Streak:
    """A condition's current run: `since` is the first frame of the run, -1 when not holding.

    Frames without a judgement (None: the condition could not be observed) neither extend nor
    break the run, so a keypoint dropout cannot reset a timer that a person is running down.
    """

    since: int = -1

    def update(self, frame: int, holds: bool | None) -> Streak:
        if holds is None:
            return self
        if holds:
            return self if self.since >= 0 else Streak(frame)
        return self if self.since < 0 else _NOT_HOLDING

    def seconds(self, frame: int, fps: float) -> float:
        return 0.0 if self.since < 0 else (frame - self.since + 1) / fps

    def reached(self, frame: int, fps: float, seconds: float) -> bool:
        return self.since >= 0 and (frame - self.since + 1) >= seconds * fps - 1e-9


_NOT_HOLDING = Streak()
