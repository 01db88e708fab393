"""Helpers shared by the exercise rule modules: geometry, the repetition cycle, timers.

Everything here is pure and allocation-light: the rules run on every frame of every lane and
on every replay, so plain float math on Python lists is preferred over many small numpy calls.
"""

from .cycle import Cycle, CycleThresholds, Median3, Transition
from .geometry import Body, read_body, rnd
from .levels import per_level
from .timers import Streak

__all__ = [
    "Body",
    "Cycle",
    "CycleThresholds",
    "Median3",
    "Streak",
    "Transition",
    "per_level",
    "read_body",
    "rnd",
]
