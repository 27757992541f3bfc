"""Shared, briefly reused answers for /health and /api/status.

Two hundred dashboards or health checks asking at once should cost one set of
database queries, not two hundred: concurrent callers await the same
computation, and its result serves later callers for `ttl` seconds. After
that, callers still get the previous answer (up to `10 * ttl` old) while a
fresh one is computed in the background, so no request waits on a database
that is busy with the workers' writes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Shared(Generic[T]):
    def __init__(self, compute: Callable[[], Awaitable[T]], ttl: float) -> None:
        self._compute = compute
        self._ttl = ttl
        self._max_stale = 10 * ttl
        self._value: T | None = None
        self._at = float("-inf")
        self._running: asyncio.Future[T] | None = None

    async def get(self) -> T:
        age = asyncio.get_running_loop().time() - self._at
        if self._value is not None and age < self._ttl:
            return self._value
        if self._running is None:
            self._running = asyncio.ensure_future(self._refresh())
            # Nobody may await a background refresh: retrieve its error so it is not reported as lost.
            self._running.add_done_callback(lambda done: done.cancelled() or done.exception())
        if self._value is not None and age < self._max_stale:
            return self._value
        # Shielded: one caller going away must not cancel the others' answer.
        return await asyncio.shield(self._running)

    async def _refresh(self) -> T:
        try:
            value = await self._compute()
            self._value, self._at = value, asyncio.get_running_loop().time()
            return value
        finally:
            self._running = None


@dataclass(frozen=True)
class Snapshot:
    """An answer and its JSON text, serialised once for every caller that shares it."""

    data: dict[str, Any]
    body: bytes


def _snapshot(compute: Callable[[], Awaitable[dict[str, Any]]]) -> Callable[[], Awaitable[Snapshot]]:
    async def make() -> Snapshot:
        data = await compute()
        return Snapshot(data, json.dumps(data).encode())

    return make


class Snapshots:
    """The shared answers of one app."""

    def __init__(
        self,
        health: Callable[[], Awaitable[dict[str, Any]]],
        status: Callable[[], Awaitable[dict[str, Any]]],
        ttl: float,
    ) -> None:
        self.health = Shared(_snapshot(health), ttl)
        self.status = Shared(_snapshot(status), ttl)
