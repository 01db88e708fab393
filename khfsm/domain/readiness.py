"""What the camera sees before a test starts: the readiness report of `prepare` and `start`.

It tells the operator, before the examinee begins, whether anybody is in view, which body
parts are out of view, whether the examinee is in the exercise's start position (and what
is missing when not) and where the camera stands (side, front/back, oblique). It never
refuses a prepare or a start: the operator decides; the session records what was reported
(`ReadinessReported`), so a dispute can show what the operator was told.

Pure data: the exercises layer computes it (`khfsm.exercises.common.readiness`), the server
sends it in the ack (`as_ack`), the tablet CLI prints `summary`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The body parts a report names, head to feet: each is in view when either side's landmark
# is seen in the picture (the head: nose, eyes or ears).
BODY_PARTS = ("head", "shoulders", "elbows", "wrists", "hips", "knees", "ankles")
# Camera views as the report spells them (`khfsm.exercises.common.world.View`, lower case).
VIEWS = ("unknown", "side", "front_back", "oblique")
NO_PERSON = "no person in view"


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    """`person`: somebody is in view. `out_of_view`: the `BODY_PARTS` the camera does not
    see. `in_position`: the exercise's start position is taken (None for a task that
    declares no start position). `missing`: what keeps the examinee from it, in the
    operator's words. `view`: one of `VIEWS`."""

    person: bool
    out_of_view: tuple[str, ...] = ()
    in_position: bool | None = None
    missing: tuple[str, ...] = ()
    view: str = "unknown"

    @classmethod
    def nobody(cls, *, judged: bool) -> ReadinessReport:
        """Nobody in view; `judged` when the task has a start position (then not taken)."""
        return cls(
            person=False,
            out_of_view=BODY_PARTS,
            in_position=False if judged else None,
            missing=(NO_PERSON,),
        )

    def summary(self) -> str:
        """One line for the operator."""
        if not self.person:
            return NO_PERSON
        parts = [f"person in view ({self.view.replace('_', '/')} view)"]
        if self.out_of_view:
            parts.append(f"out of view: {', '.join(self.out_of_view)}")
        line = ", ".join(parts)
        if self.in_position is True:
            return f"{line}; in the start position"
        if self.in_position is False:
            why = "; ".join(self.missing) or "the start position is not taken"
            return f"{line}; not in the start position: {why}"
        return line

    def as_ack(self) -> dict[str, Any]:
        """The ack's `readiness` object (JSON-ready)."""
        return {
            "person": self.person,
            "out_of_view": list(self.out_of_view),
            "in_position": self.in_position,
            "missing": list(self.missing),
            "view": self.view,
            "summary": self.summary(),
        }
