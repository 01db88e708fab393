"""The interface every exercise's rules implement (the modules in `exercises/`).

A rule set is a pure step function: given its configuration, its previous state, a frame
index and that frame's pose (or None when nobody was found), it returns the next state and
any verdicts. No wall clock, no randomness, no hidden state: time is `frame / fps`. The live
pipeline and replay run exactly this code, which is what makes a replay bit-exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from khfsm.domain.pose import Pose
from khfsm.domain.task import Task

LEVELS = range(1, 6)  # 5 = the standard exam; lower levels are more lenient


@dataclass(frozen=True, slots=True)
class RulesConfig:
    level: int
    fps: float
    frame_width: int = 0
    frame_height: int = 0

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"Level must be 1 to 5, got {self.level}")
        if not self.fps > 0:
            raise ValueError(f"Fps must be positive, got {self.fps}")

    def seconds(self, frame: int) -> float:
        return frame / self.fps


@dataclass(frozen=True, slots=True)
class RepJudged:
    """One attempt, judged: `status` is (0,) when valid, else its 3XY fault codes."""

    start_frame: int
    end_frame: int
    status: tuple[int, ...]
    measurements: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MotionForbidden:
    """Unallowed motion: the test stops with status -3."""

    frame: int
    code: str
    message: str
    measurements: Mapping[str, float] = field(default_factory=dict)


Verdict = RepJudged | MotionForbidden


@runtime_checkable
class Exercise(Task, Protocol):
    """What an exercise module exports as `EXERCISE`: a task (`khfsm.domain.task.Task`) with
    rules that judge repetitions from keypoints."""

    @property
    def code_digit(self) -> int:
        """X of its 3XY fault codes (1..9): an exercise always has one."""
        ...

    def initial_state(self, config: RulesConfig) -> Any: ...

    def step(
        self, config: RulesConfig, state: Any, frame: int, pose: Pose | None
    ) -> tuple[Any, Sequence[Verdict]]:
        """Consume one frame; must not mutate `state`."""
        ...

    def finish(self, config: RulesConfig, state: Any, frame: int) -> Sequence[Verdict]:
        """The test ends before frame `frame`: judge what is still in progress, if anything."""
        ...
