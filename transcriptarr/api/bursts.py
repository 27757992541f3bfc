"""One log line when a burst of like events starts and one with the count when it ends, never one per event.

A flood (1,000 slow clients, an exhausted file table) repeats the same event thousands of times a second;
logging each one made a 263 MB log in 102 s. `Burst.hit()` costs a counter increment after the first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class Burst:
    """`first(**fields)` for the first event of a burst; `summary(count, seconds)` once it has been quiet for
    `quiet` seconds (and every `longest` seconds while it goes on), only when more than one event came."""

    def __init__(
        self,
        first: Callable[..., None],
        summary: Callable[[int, float], None],
        *,
        quiet: float = 10.0,
        longest: float = 300.0,
    ) -> None:
        self._first = first
        self._summary = summary
        self._quiet = quiet
        self._longest = longest
        self._count = 0  # events since the last line
        self._since = 0.0  # when the counted events began
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def active(self) -> bool:
        return self._timer is not None

    def hit(self, **fields: Any) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._timer is None:
            self._first(**fields)
            self._count, self._since = 0, now
            self._timer = loop.call_at(now + self._quiet, self._check)
        else:
            self._count += 1
        self._last = now

    def close(self) -> None:
        """Say what is still counted (at shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._flush(asyncio.get_running_loop().time())

    def _check(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._last >= self._quiet:
            self._timer = None
            self._flush(now)
            return
        if now - self._since >= self._longest:  # a flood that never pauses still gets a line now and then
            self._flush(now)
            self._count, self._since = 0, now
        self._timer = loop.call_at(min(self._last + self._quiet, self._since + self._longest), self._check)

    def _flush(self, now: float) -> None:
        if self._count:
            self._summary(self._count, round(now - self._since, 1))
        self._count = 0
