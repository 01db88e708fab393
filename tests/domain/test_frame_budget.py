"""The frame budget round(Duration × Fps) either side of a half and at the half itself."""

from __future__ import annotations

import pytest

from khfsm.domain.timeline import frame_budget


@pytest.mark.parametrize(
    ("duration", "fps", "frames"),
    [
        (2.45, 12, 29),  # 29.4 (29.400000000000002 in binary)
        (2.5, 12, 30),  # 30.0
        (122, 20, 2440),  # the standard test
        (0.44, 10, 4),  # 4.4
        (0.45, 10, 5),  # 4.5: up, where round() gives the even 4
        (0.46, 10, 5),  # 4.6
        (0.54, 10, 5),  # 5.4
        (0.55, 10, 6),  # 5.5
        (0.56, 10, 6),  # 5.6
        (1.14, 10, 11),  # 11.4
        (1.15, 10, 12),  # 11.5, although 1.15 * 10 == 11.499999999999998
        (1.16, 10, 12),  # 11.6
        (2.5, 1, 3),  # 2.5
        (0.1, 5, 1),  # 0.5: half a frame is one frame
        (0.08, 5, 0),  # 0.4: less than half a frame is none (prepare refuses it)
        (60.7, 15, 911),  # 910.5
        (30.02, 20, 600),  # 600.4
        (30.03, 20, 601),  # 600.6
    ],
)
def test_frame_budget_rounds_halves_up(duration: float, fps: float, frames: int) -> None:
    assert frame_budget(duration, fps) == frames
    assert frame_budget(float(duration), float(fps)) == frames  # JSON numbers arrive as floats


def test_a_hair_either_side_of_a_half() -> None:
    assert frame_budget(0.4499, 10) == 4
    assert frame_budget(0.4501, 10) == 5
