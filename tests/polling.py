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
