"""A site's own exercise, shipped as a package of its own: the plug-in test of issue 8.

"metronome" judges an attempt every `BEAT` assessed frames in which somebody is in view,
whatever the body does; every second attempt is off the beat (fault 371). Trivial on
purpose: what the test checks is that a plug-in brings its own fault code (digit 7, free
among the built-in exercises) and push code (7777) through the `khfsm.exercises` entry
point, end to end, without the engine knowing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from khfsm.domain.codes import VALID, fault_code
from khfsm.domain.exercise import RepJudged, RulesConfig, Verdict
from khfsm.domain.pose import Pose

BEAT = 10
CODE_DIGIT = 7
OFF_BEAT = fault_code(CODE_DIGIT, 1)  # 371


@dataclass(frozen=True, slots=True)
class State:
    seen: int = 0  # frames with somebody in view
    start: int = 0  # first frame of the attempt in progress


class Metronome:
    task = "metronome"
    rules_version = "metronome-1"
    code_digit = CODE_DIGIT
    push_code = 7777
    faults: ClassVar[dict[int, str]] = {OFF_BEAT: "off the beat"}

    def initial_state(self, config: RulesConfig) -> State:
        return State()

    def step(
        self, config: RulesConfig, state: State, frame: int, pose: Pose | None
    ) -> tuple[State, Sequence[Verdict]]:
        if pose is None:
            return state, ()
        seen = state.seen + 1
        if seen % BEAT:
            return State(seen, state.start), ()
        attempt = seen // BEAT
        status = (VALID,) if attempt % 2 else (OFF_BEAT,)
        return State(seen, frame + 1), [RepJudged(state.start, frame, status, {"seen": seen})]

    def finish(self, config: RulesConfig, state: State, frame: int) -> Sequence[Verdict]:
        return ()


EXERCISE = Metronome()
