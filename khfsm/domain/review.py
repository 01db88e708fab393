"""Reviewers' rulings and the reviewed result: the board's score beside the machine's.

A reviewer upholds or overturns one repetition or the session's terminal verdict, with a
reason (`ReviewDecided`, appended after the end; "AI plus human" double scoring). What a
ruling does, decided here once, pure:

- **A repetition.** Overturning a valid repetition makes it invalid, overturning an invalid
  one makes it valid; upholding keeps the machine's verdict. A ruling is always relative to
  the machine's verdict, and the latest ruling on a target stands (two overturns are one
  overturn, an uphold after an overturn restores the machine's verdict). Attempts stay
  attempts: the reviewed total is the machine's total; the reviewed count is the number of
  repetitions valid after the rulings.
- **The verdict** (how the test ended: time up, unallowed motion, stopped, ...). Overturning
  it rules that the machine's ending does not stand — an unallowed-motion stop the board finds
  allowed, or a test it voids. What follows from that (a retest, the count at the stop
  standing) is the exam's regulation, not the machine's to invent: the reviewed result keeps
  the reviewed counts and marks the verdict "overturned" with the reason, and every report
  (`khfsm sessions`, the results export, the API) shows it beside the machine's.

The machine's result is never changed: `fold` keeps the counts of `SessionEnded`, and
replay re-derives exactly the machine's events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from khfsm.domain.errors import DomainError
from khfsm.domain.events import ReviewDecided
from khfsm.domain.fold import SessionSummary

VERDICT = "verdict"
MAX_REASON = 2000  # characters; a ruling's reason is a sentence or a paragraph, not a file
MAX_REVIEWER = 128


class Decision(StrEnum):
    UPHOLD = "uphold"
    OVERTURN = "overturn"


class VerdictRuling(StrEnum):
    NOT_REVIEWED = "not reviewed"
    UPHELD = "upheld"
    OVERTURNED = "overturned"


class DecisionRefused(DomainError):
    """A ruling that cannot be recorded (the session is running, no such repetition, ...)."""


Target = int | str  # a repetition's 1-based number, or "verdict"


def parse_target(target: object) -> int | None:
    """The repetition number a target names (None: the verdict); `DecisionRefused` if it
    names neither. Accepts 3, "3" and "verdict"."""
    if isinstance(target, bool):  # bool is an int to Python, never a repetition
        raise DecisionRefused(f"target {target!r} is neither a repetition number nor 'verdict'")
    if isinstance(target, int):
        return target
    if isinstance(target, str):
        text = target.strip().lower()
        if text == VERDICT:
            return None
        if text.isdigit():
            return int(text)
    raise DecisionRefused(
        f"target {target!r} is neither a repetition number (1, 2, ...) nor 'verdict'"
    )


def decide(
    summary: SessionSummary,
    *,
    reviewer: str,
    target: object,
    decision: str,
    reason: str,
    at: str,
) -> ReviewDecided:
    """The ruling to append to the session `summary` describes; `DecisionRefused` with the
    reason when it cannot be made. `summary` must hold the session's repetitions (a fold of
    at least its `RepCounted` and `SessionEnded` events)."""
    if not summary.ended:
        raise DecisionRefused(
            "the session has not ended; rulings are made on a finished test, after its result"
        )
    name = reviewer.strip()
    if not name or len(name) > MAX_REVIEWER:
        raise DecisionRefused(f"the reviewer's name must be 1 to {MAX_REVIEWER} characters")
    try:
        ruling = Decision(str(decision).strip().lower())
    except ValueError:
        raise DecisionRefused(f"decision {decision!r} is neither 'uphold' nor 'overturn'") from None
    words = reason.strip()
    if not words:
        raise DecisionRefused("a ruling needs a reason: say why it is upheld or overturned")
    if len(words) > MAX_REASON:
        raise DecisionRefused(f"the reason is longer than {MAX_REASON} characters")
    try:
        datetime.fromisoformat(at)
    except ValueError:
        raise DecisionRefused(f"the time of the ruling {at!r} is not an ISO 8601 time") from None
    rep = parse_target(target)
    reps = len(summary.reps)
    if rep is not None and not 1 <= rep <= reps:
        has = f"repetitions 1 to {reps}" if reps else "no repetitions"
        raise DecisionRefused(f"the session has {has}; there is no repetition {rep} to rule on")
    return ReviewDecided(reviewer=name, at=at, rep=rep, decision=ruling.value, reason=words)


@dataclass(frozen=True, slots=True)
class ReviewedResult:
    """The machine's result and the board's, side by side."""

    machine_count: int
    machine_total: int
    end_status: int | None  # the machine's verdict (an EndStatus value)
    count: int  # valid repetitions after the rulings
    total: int  # attempts (rulings never add or remove one)
    valid: tuple[bool, ...]  # per repetition, after the rulings
    overturned: tuple[int, ...]  # repetitions whose standing ruling is an overturn
    verdict: VerdictRuling
    verdict_reason: str  # the standing ruling's reason on the verdict ("" if none)
    decisions: int  # rulings recorded (superseded ones included)

    @property
    def reviewed(self) -> bool:
        return self.decisions > 0

    @property
    def changed(self) -> bool:
        """Whether the board's result differs from the machine's."""
        return bool(self.overturned) or self.verdict is VerdictRuling.OVERTURNED

    def describe(self) -> str:
        """In words, for a listing: "not reviewed", "upheld 12/15", "11/15 (rep 3
        overturned)", "12/15, verdict overturned"."""
        if not self.reviewed:
            return "not reviewed"
        if not self.changed:
            return f"upheld {self.count}/{self.total}"
        text = f"{self.count}/{self.total}"
        if self.overturned:
            word = "rep" if len(self.overturned) == 1 else "reps"
            text += f" ({word} {', '.join(map(str, self.overturned))} overturned)"
        if self.verdict is VerdictRuling.OVERTURNED:
            text += ", verdict overturned"
        return text


def reviewed_result(summary: SessionSummary) -> ReviewedResult:
    """The result after the rulings in `summary` (see the module docstring); pure."""
    standing: dict[int | None, ReviewDecided] = {}
    for ruling in summary.decisions:
        standing[ruling.rep] = ruling  # the latest ruling on a target stands
    machine_valid = [rep.valid for rep in summary.reps]
    valid = list(machine_valid)
    overturned = []
    for index, machine in enumerate(machine_valid, start=1):
        on_rep = standing.get(index)
        if on_rep is not None and on_rep.decision == Decision.OVERTURN:
            valid[index - 1] = not machine
            overturned.append(index)
    on_verdict = standing.get(None)
    if on_verdict is None:
        verdict, verdict_reason = VerdictRuling.NOT_REVIEWED, ""
    elif on_verdict.decision == Decision.OVERTURN:
        verdict, verdict_reason = VerdictRuling.OVERTURNED, on_verdict.reason
    else:
        verdict, verdict_reason = VerdictRuling.UPHELD, on_verdict.reason
    # Without repetitions in the summary (a summary rebuilt from the store's columns, a
    # face check) the machine's counts are all there is to report.
    count = sum(valid) if summary.reps else summary.count
    return ReviewedResult(
        machine_count=summary.count,
        machine_total=summary.total,
        end_status=summary.end_status,
        count=count,
        total=summary.total,
        valid=tuple(valid),
        overturned=tuple(overturned),
        verdict=verdict,
        verdict_reason=verdict_reason,
        decisions=len(summary.decisions),
    )
