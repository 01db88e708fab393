"""Thresholds per grading level: one tuple per threshold, Level 1 (most lenient) to 5."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def per_level(level: int, values: tuple[T, T, T, T, T]) -> T:
    """The value for `level` (1..5) from a (L1, L2, L3, L4, L5) tuple."""
    if not 1 <= level <= 5:
        raise ValueError(f"Level must be 1 to 5, got {level}")
    return values[level - 1]
