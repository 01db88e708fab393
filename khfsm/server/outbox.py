"""A connection's outgoing frames: a queue that never makes a lane wait for a slow tablet.

Lanes put pushes here and return at once. Progress pushes are cumulative (each carries the
running `total` and `count`), so when a tablet reads too slowly the oldest *progress* pushes
are dropped first and the tablet still ends up with the latest numbers. Acknowledgements,
status replies and terminal pushes are never dropped; they are bounded by the tablet's own
requests (the reader waits for room before reading the next request) and by one terminal
push per session.
"""

from __future__ import annotations

from collections import deque

import anyio

MAX_PROGRESS = 32  # queued progress pushes per connection before the oldest are dropped
MAX_PENDING = 256  # queued frames of any kind before the reader stops reading requests


class Outbox:
    def __init__(self, max_progress: int = MAX_PROGRESS, max_pending: int = MAX_PENDING) -> None:
        self._items: deque[tuple[str, bool]] = deque()
        self._progress = 0
        self._max_progress = max_progress
        self._max_pending = max_pending
        self._ready = anyio.Event()
        self._room = anyio.Event()
        self._empty = anyio.Event()
        self._closed = False
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, text: str, *, droppable: bool = False) -> None:
        """Queue `text`; never blocks. Droppable frames are progress pushes."""
        if self._closed:
            return
        self._items.append((text, droppable))
        if droppable:
            self._progress += 1
            if self._progress > self._max_progress:
                self._drop_oldest_progress()
        self._ready.set()

    def _drop_oldest_progress(self) -> None:
        for index, (_, droppable) in enumerate(self._items):
            if droppable:
                del self._items[index]
                self._progress -= 1
                self.dropped += 1
                return

    async def get(self) -> str:
        """The next frame to send; raises anyio.EndOfStream once closed and drained."""
        while not self._items:
            if self._closed:
                raise anyio.EndOfStream
            self._ready = anyio.Event()
            await self._ready.wait()
        text, droppable = self._items.popleft()
        if droppable:
            self._progress -= 1
        if len(self._items) < self._max_pending:
            self._room.set()
        if not self._items:
            self._empty.set()
        return text

    async def emptied(self) -> None:
        """Return once every queued frame has been taken (or the outbox is closed)."""
        while self._items and not self._closed:
            self._empty = anyio.Event()
            await self._empty.wait()

    async def wait_for_room(self) -> None:
        """Backpressure for the request reader: a tablet that never reads its acks."""
        while len(self._items) >= self._max_pending and not self._closed:
            self._room = anyio.Event()
            await self._room.wait()

    def close(self) -> None:
        self._closed = True
        self._ready.set()
        self._room.set()
        self._empty.set()
