"""When an attempt really began: the moment the examinee left the rest position.

The attempt detector (`attempts.py`) starts an attempt at its `top`: the highest value seen
since the last attempt. In a long, still rest (a dead hang before a pull-up, standing between
squats) that maximum falls on whichever frame the keypoint noise made highest, possibly
seconds before the movement, so the verdict's time span would cover the whole rest. `Onset`
remembers instead the last frame, before the attempt started, at which the signal was still
within `band` of that top: where the movement left the rest. A rule module steps it beside
its detector and passes `start_frame` to the judge.
"""

from __future__ import annotations

from dataclasses import dataclass

from exercises.common.attempts import AttemptDetector, Events


@dataclass(frozen=True, slots=True)
class Onset:
    last_at_top: int = -1  # last frame at (within `band` of) the detector's running top
    start_frame: int = -1  # the attempt in progress began here (-1: none yet)

    def step(
        self,
        before: AttemptDetector,
        after: AttemptDetector,
        events: Events,
        frame: int,
        value: float | None,
        band: float,
    ) -> Onset:
        """The onset after one detector step (`before` -> `after`, with its `events`)."""
        last = self.last_at_top
        if value is not None and not before.in_attempt and value >= before.top - band:
            last = frame
        if events.started:
            if events.ended is not None or last < after.top_frame:
                # A bounce starts at the turn itself; a top newer than the last frame at the
                # top means the descent began right there.
                return Onset(last_at_top=-1, start_frame=after.top_frame)
            return Onset(last_at_top=-1, start_frame=last)
        if events.abandoned:
            return Onset(last_at_top=last)
        return Onset(last_at_top=last, start_frame=self.start_frame)
