"""ffprobe for the library: a bounded number at once, counted, replaceable in tests.

One ffprobe per file however often it is asked about: calls for the same file (same
path, size, mtime and inode) while its probe runs wait for that probe (500 webhooks for a new
file, one ffprobe), and a file probed a moment ago is answered from memory until it
changes. Errors are not remembered: a file that could not be probed is tried again.
"""

# Paths are plain str throughout the library package: os.path.
# ruff: noqa: PTH116

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path

from transcriptarr.media.probe import MediaInfo, ProbeError, probe_media

ProbeFunction = Callable[[Path], Awaitable[MediaInfo]]
ProbeResult = MediaInfo | ProbeError
_Identity = tuple[str, int, int, int]  # path, size, mtime_ns, inode: a changed or replaced file is a new one
_REMEMBERED = 256


async def probe_file(path: Path) -> MediaInfo:
    # Files without audio are media too: the rules say why they are skipped. The readable length
    # tells a half-copied file whose header already holds the full duration (scanner.py waits for it).
    return await probe_media(path, require_audio=False, measure_length=True)


class Prober:
    def __init__(self, concurrency: int, probe: ProbeFunction = probe_file, *, remembered: int = _REMEMBERED) -> None:
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._probe = probe
        self._running: dict[_Identity, asyncio.Task[ProbeResult]] = {}
        self._recent: OrderedDict[_Identity, MediaInfo] = OrderedDict()
        self._remembered = remembered
        self.count = 0  # ffprobe runs so far; a rescan of an unchanged library adds none

    async def probe(self, path: str) -> ProbeResult:
        """The probe result, or the ProbeError that says why there is none."""
        identity = await asyncio.to_thread(_identity, path)
        if identity is None:  # cannot even stat it: ffprobe's own checks say why
            return await self._run(path)
        if (known := self._recent.get(identity)) is not None:
            self._recent.move_to_end(identity)
            return known
        running = self._running.get(identity)
        if running is None:
            running = asyncio.ensure_future(self._run(path))
            self._running[identity] = running
            running.add_done_callback(lambda task: self._landed(identity, task))
        # Shielded: one caller that gives up (a webhook client gone) does not cancel the others' probe.
        return await asyncio.shield(running)

    async def _run(self, path: str) -> ProbeResult:
        async with self._slots:
            self.count += 1
            try:
                return await self._probe(Path(path))
            except ProbeError as exc:
                return exc

    def _landed(self, identity: _Identity, task: asyncio.Task[ProbeResult]) -> None:
        if self._running.get(identity) is task:
            del self._running[identity]
        if task.cancelled() or task.exception() is not None:  # read, so asyncio does not report it unread
            return
        result = task.result()
        if isinstance(result, MediaInfo):
            self._recent[identity] = result
            while len(self._recent) > self._remembered:
                self._recent.popitem(last=False)


def _identity(path: str) -> _Identity | None:
    try:
        stat = os.stat(path)
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return None
    return path, stat.st_size, stat.st_mtime_ns, stat.st_ino
