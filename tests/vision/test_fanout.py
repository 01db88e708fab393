"""FanOut: a batch's crops in a few threads at once, in order, errors kept, CPU charged to the
thread that asked."""

from __future__ import annotations

import threading
import time

import pytest

from khfsm.vision.fanout import FanOut, helper_cpu_s


def burn(seconds: float) -> float:
    """Spin on the CPU for about `seconds` of this thread's CPU time; the time it took."""
    started = time.thread_time()
    while time.thread_time() - started < seconds:
        pass
    return time.thread_time() - started


def test_results_come_back_in_the_items_order() -> None:
    fanout = FanOut(3)
    try:
        items = list(range(20))
        assert fanout.map(lambda k: k * k, items) == [k * k for k in items]
        assert fanout.map(lambda k: k, []) == []
    finally:
        fanout.close()


def test_items_run_at_once_in_several_threads() -> None:
    fanout = FanOut(2)
    meeting = threading.Barrier(2, timeout=5)  # broken (an error) unless two items meet
    try:
        assert fanout.map(lambda k: meeting.wait() >= 0 and k, [1, 2]) == [1, 2]
    finally:
        fanout.close()


def test_one_thread_or_one_item_runs_in_the_callers_thread() -> None:
    caller = threading.get_ident()
    single = FanOut(1)
    assert single.map(lambda _: threading.get_ident(), [1, 2, 3]) == [caller] * 3
    several = FanOut(4)
    try:
        assert several.map(lambda _: threading.get_ident(), [1]) == [caller]
    finally:
        several.close()
    with pytest.raises(ValueError):
        FanOut(0)


def test_the_first_error_is_raised_after_every_item_has_finished() -> None:
    fanout = FanOut(2)
    finished: list[int] = []

    def work(k: int) -> int:
        if k == 0:
            raise KeyError("first")
        time.sleep(0.05)
        finished.append(k)
        return k

    try:
        with pytest.raises(KeyError, match="first"):
            fanout.map(work, [0, 1, 2, 3])
        assert sorted(finished) == [1, 2, 3]  # none left running behind the caller
    finally:
        fanout.close()


def test_the_helpers_cpu_time_is_charged_to_the_caller() -> None:
    fanout = FanOut(2)
    try:
        before = helper_cpu_s()
        spent = fanout.map(burn, [0.03] * 4)
        charged = helper_cpu_s() - before
        # each item measured its own CPU time: the charge is their sum, not the caller's own
        assert charged == pytest.approx(sum(spent), abs=0.005)
        assert charged >= 0.12
        # another thread's work is not charged here
        other = threading.Thread(target=lambda: fanout.map(burn, [0.02] * 2))
        other.start()
        other.join()
        assert helper_cpu_s() - before == pytest.approx(charged)
    finally:
        fanout.close()
