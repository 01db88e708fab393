"""Running the same OpenCV work on every frame of a batch in a few threads at once.

Why: on a GPU, a batch of frames from many lanes costs the GPU little, and the CPU work around
it a lot: each frame's crop (three `warpAffine`s, a colour transform) is done one after the
other in the batch's thread, so a batch of 16 waits for 16 crops before its model runs, and
every lane in it waits for the batch (a lane's next frame waits for its last). OpenCV and
NumPy's array operations release the GIL, so the crops of one batch can run on several cores.
On CPU, where a batch holds one frame, nothing changes.

The CPU time the helper threads spend is charged to the thread that asked for the work
(`helper_cpu_s`), so that a batch's CPU figure (`PoseService`, `/healthz`) still covers it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_charged = threading.local()


def helper_cpu_s() -> float:
    """CPU seconds that FanOut's threads have spent so far on work this thread asked for."""
    return float(getattr(_charged, "seconds", 0.0))


class FanOut:
    """`map` over a batch's items in a pool of `threads` threads; with one thread, or one
    item, in the calling thread. Thread-safe: several batches may call `map` at once and share
    the pool."""

    def __init__(self, threads: int) -> None:
        if threads < 1:
            raise ValueError("a FanOut needs at least one thread")
        self.threads = threads
        self._pool = (
            ThreadPoolExecutor(threads, thread_name_prefix="khfsm-fanout") if threads > 1 else None
        )

    def map(self, work: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """[work(item) for item in items], in order. When an item fails, the first error is
        raised once every item has finished (none is left running behind the caller)."""
        if self._pool is None or len(items) < 2:
            return [work(item) for item in items]

        def timed(item: T) -> tuple[R, float]:
            started = time.thread_time()
            result = work(item)
            return result, time.thread_time() - started

        futures = [self._pool.submit(timed, item) for item in items]
        wait(futures)
        charged = 0.0
        results: list[R] = []
        error: BaseException | None = None
        for future in futures:
            try:
                result, cpu = future.result()
            except BaseException as e:
                error = error or e
                continue
            results.append(result)
            charged += cpu
        _charged.seconds = helper_cpu_s() + charged
        if error is not None:
            raise error
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
