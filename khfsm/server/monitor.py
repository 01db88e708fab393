"""Event-loop lag: how late a ticker that asks to wake every `interval` actually wakes.

Anything CPU-bound or blocking on the loop shows up here first, long before tablets see
WebSocket pings time out (the original server's close code 1006). /healthz reports it.
"""

from __future__ import annotations

import math
import time
from collections import deque

import anyio

INTERVAL_S = 0.01
KEEP_S = 300.0


class LoopMonitor:
    def __init__(self, interval_s: float = INTERVAL_S, keep_s: float = KEEP_S) -> None:
        self.interval = interval_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=int(keep_s / interval_s))

    async def run(self) -> None:
        while True:
            before = time.monotonic()
            await anyio.sleep(self.interval)
            now = time.monotonic()
            self._samples.append((now, max(0.0, now - before - self.interval)))

    def lag_ms(self, window_s: float | None = None) -> dict[str, float | int]:
        """Lag quantiles over the last `window_s` seconds (all kept samples if None)."""
        since = -math.inf if window_s is None else time.monotonic() - window_s
        lags = sorted(lag for at, lag in self._samples if at >= since)
        if not lags:
            return {"samples": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}

        def q(p: float) -> float:
            return round(1000 * lags[min(len(lags) - 1, math.ceil(p * len(lags)) - 1)], 2)

        return {"samples": len(lags), "p50": q(0.5), "p99": q(0.99), "max": q(1.0)}
