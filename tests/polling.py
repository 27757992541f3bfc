"""Waiting in tests without sleeping blindly: poll a condition until it holds, within a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest


async def eventually(check: Callable[[], object], what: str, timeout: float = 120.0, every: float = 0.05) -> None:
    """Poll `check()` (sync or async) until it is true; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(every)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def wait_until(check: Callable[[], object], what: str, timeout: float = 120.0, every: float = 0.2) -> None:
    """`eventually` for code outside an event loop: poll `check()` until it is true, within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def keep_up_until(started: float, seconds: float) -> None:
    """Let a fault a test set up at `started` (monotonic) last `seconds` in all: a duration, not a wait for an event."""
    time.sleep(max(0.0, started + seconds - time.monotonic()))
