"""Typed application keys: everything a handler reads from its app lives behind one of these."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from transcriptarr.api.config import ApiConfig

if TYPE_CHECKING:
    from transcriptarr.api.metrics import ApiMetrics
    from transcriptarr.api.snapshots import Snapshots
    from transcriptarr.service import Components

# Runs a library rescan now and says what it found (set by whoever owns the scanner).
ScanHook = Callable[[], Awaitable[dict[str, Any]]]

PARTS: web.AppKey[Components] = web.AppKey("parts")
CONFIG = web.AppKey("config", ApiConfig)
METRICS: web.AppKey[ApiMetrics] = web.AppKey("metrics")
SNAPSHOTS: web.AppKey[Snapshots] = web.AppKey("snapshots")
SCAN_HOOK: web.AppKey[ScanHook | None] = web.AppKey("scan_hook")
# Set when the server shuts down: long requests (Bazarr waits, event streams) answer and end.
SHUTTING_DOWN = web.AppKey("shutting_down", asyncio.Event)
# Language detection runs beside the workers; this bounds how many at once.
DETECT_SLOTS = web.AppKey("detect_slots", asyncio.Semaphore)
