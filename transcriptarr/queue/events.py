"""In-process job events: what the workers do, for live views and waiting requests.

Each subscriber gets its own bounded queue; a subscriber that does not keep up
loses the oldest events rather than slowing the workers down. Other nodes'
work is not seen here: readers that need it also poll the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

Event = dict[str, Any]


class JobEvents:
    def __init__(self, buffer: int = 256) -> None:
        self._buffer = buffer
        self._subscribers: set[asyncio.Queue[Event]] = set()

    def publish(self, kind: str, **data: Any) -> None:
        event = {"event": kind, **data}
        for queue in self._subscribers:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._buffer)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
