"""When the site board says a lane is falling behind."""

from khfsm.server.pipeline import FRAME_QUEUE
from khfsm.web.board import BEHIND_AFTER_S, behind


def test_a_full_frame_queue_is_falling_behind() -> None:
    # the queue holds FRAME_QUEUE frames (0.4 s at 20 fps): a backlog can never reach a
    # second of frames, so "full" is the sign that the camera waits for the assessment
    assert behind(backlog=FRAME_QUEUE, assessed=10, rate=20, fps=20) == (
        f"falling behind: {FRAME_QUEUE} frames waiting"
    )
    assert behind(backlog=FRAME_QUEUE - 1, assessed=10, rate=20, fps=20)
    assert behind(backlog=FRAME_QUEUE - 2, assessed=10, rate=20, fps=20) == ""


def test_a_slow_rate_is_falling_behind_once_it_has_lasted() -> None:
    settled = BEHIND_AFTER_S * 15  # frames assessed at 15 fps over BEHIND_AFTER_S
    assert behind(backlog=0, assessed=settled, rate=15, fps=20) == (
        "falling behind: 15.0 of 20 fps"
    )
    assert behind(backlog=0, assessed=settled - 15, rate=15, fps=20) == ""  # too early to say
    assert behind(backlog=0, assessed=settled, rate=19.5, fps=20) == ""  # keeping up
