"""Typed application keys: everything a handler reads from its app lives behind one of these."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from transcriptarr.api.config import ApiConfig
from transcriptarr.api.dependencies import ApiDeps

if TYPE_CHECKING:
    from transcriptarr.api.metrics import ApiMetrics
    from transcriptarr.api.snapshots import Snapshots

# What the routes work with (api/dependencies.py), handed in by the composition root.
DEPS = web.AppKey("deps", ApiDeps)
CONFIG = web.AppKey("config", ApiConfig)
METRICS: web.AppKey[ApiMetrics] = web.AppKey("metrics")
SNAPSHOTS: web.AppKey[Snapshots] = web.AppKey("snapshots")
# Set when the server shuts down: long requests (Bazarr waits, event streams) answer and end.
SHUTTING_DOWN = web.AppKey("shutting_down", asyncio.Event)
# Language detection runs beside the workers; this bounds how many at once.
DETECT_SLOTS = web.AppKey("detect_slots", asyncio.Semaphore)
