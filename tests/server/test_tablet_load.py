"""50 tablets and one that never reads (benchmarks/bench_tablets.py, for half a minute).

Against a real `khfsm serve` process: every ping of every reading tablet is answered and
the server's memory stays bounded (its RSS grows by less than a fixed amount after warm-up,
whatever the non-reader sends: the server stops reading it once its replies back up, and
disconnects it after `send_timeout_s` if its socket stays full). The figures are printed;
benchmarks/bench_tablets.py runs the same for 10 minutes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from benchmarks.bench_tablets import report, run_load, served

SECONDS = 30.0
TABLETS = 50
SEND_TIMEOUT_S = 5.0
# What a bounded server may still grow by after warm-up: its lanes' recordings, the store's
# caches. Unbounded queues grow by hundreds of MB in this time (issue 10: 512 MiB/connection).
GROWTH_MB = 150.0


def test_fifty_tablets_and_one_that_never_reads(tmp_path: Path, videos: Path) -> None:
    with served(tmp_path, videos, send_timeout_s=str(SEND_TIMEOUT_S)) as (process, port):
        figures = asyncio.run(run_load(port, process.pid, SECONDS, TABLETS, lanes=2))
        alive = process.poll() is None
    print("\n" + report(figures, SECONDS))
    assert alive, "the server died under load"
    assert not figures.errors, figures.errors
    assert figures.pings_unanswered == 0
    assert len(figures.ping_ms) >= TABLETS * (SECONDS / 2 - 2)
    warm = figures.rss_after(10.0)
    assert figures.peak_rss_mb - warm < GROWTH_MB, (warm, figures.peak_rss_mb)
