"""Shared, briefly reused answers for /health and /api/status.

Two hundred dashboards or health checks asking at once should cost one set of
database queries, not two hundred: concurrent callers await the same
computation, and its result serves later callers for `ttl` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Shared(Generic[T]):
    def __init__(self, compute: Callable[[], Awaitable[T]], ttl: float) -> None:
        self._compute = compute
        self._ttl = ttl
        self._value: T | None = None
        self._at = float("-inf")
        self._running: asyncio.Future[T] | None = None

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        if self._value is not None and loop.time() - self._at < self._ttl:
            return self._value
        if self._running is None:
            self._running = asyncio.ensure_future(self._refresh())
        # Shielded: one caller going away must not cancel the others' answer.
        return await asyncio.shield(self._running)

    async def _refresh(self) -> T:
        try:
            value = await self._compute()
            self._value, self._at = value, asyncio.get_running_loop().time()
            return value
        finally:
            self._running = None


class Snapshots:
    """The shared answers of one app."""

    def __init__(
        self,
        health: Callable[[], Awaitable[dict[str, Any]]],
        status: Callable[[], Awaitable[dict[str, Any]]],
        ttl: float,
    ) -> None:
        self.health = Shared(health, ttl)
        self.status = Shared(status, ttl)
