"""ffprobe for the library: a bounded number at once, counted, replaceable in tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from transcriptarr.media.probe import MediaInfo, ProbeError, probe_media

ProbeFunction = Callable[[Path], Awaitable[MediaInfo]]


async def probe_file(path: Path) -> MediaInfo:
    # Files without audio are media too: the rules say why they are skipped.
    return await probe_media(path, require_audio=False)


class Prober:
    def __init__(self, concurrency: int, probe: ProbeFunction = probe_file) -> None:
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._probe = probe
        self.count = 0  # ffprobe runs so far; a rescan of an unchanged library adds none

    async def probe(self, path: str) -> MediaInfo | ProbeError:
        """The probe result, or the ProbeError that says why there is none."""
        async with self._slots:
            self.count += 1
            try:
                return await self._probe(Path(path))
            except ProbeError as exc:
                return exc
