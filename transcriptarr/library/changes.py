"""Turning watcher events into file facts: "complete now", "moved", "deleted".

- `Settling`: a file reported as added or changed is only handed on once its size
  and mtime have stayed the same for the stability window, so a file being copied
  or downloaded is looked at once, complete.
- `Departures`: a file reported as deleted is kept for a while; if a file with the
  same size and mtime appears meanwhile it was moved, otherwise it is gone.

Both are plain state with an injectable clock; the library feeds them stat results
taken off the event loop.
"""

# Paths are plain str throughout the library package (index keys, tens of thousands per scan): os.path.
# ruff: noqa: PTH116, PTH119

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from transcriptarr.library.index import Known

Clock = Callable[[], float]
# (size, mtime_ns), or None when the file is gone.
Observation = tuple[int, int] | None


@dataclass
class _Watch:
    seen: tuple[int, int] | None
    since: float


def observe(paths: Iterable[str]) -> dict[str, Observation]:
    """Stat each path (blocking: call from a thread)."""
    found: dict[str, Observation] = {}
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            found[path] = None
            continue
        found[path] = (info.st_size, info.st_mtime_ns)
    return found


class Settling:
    def __init__(self, window_seconds: float, clock: Clock = time.monotonic) -> None:
        self.window = window_seconds
        self.clock = clock
        self._files: dict[str, _Watch] = {}

    def touch(self, path: str) -> None:
        """An event for `path`: the window starts (again) now."""
        self._files[path] = _Watch(None, self.clock())

    def discard(self, path: str) -> None:
        self._files.pop(path, None)

    def watched(self) -> list[str]:
        return list(self._files)

    def update(self, observations: Mapping[str, Observation]) -> list[str]:
        """Feed fresh stat results; return the files that have been still for the window."""
        now = self.clock()
        settled = []
        for path, seen in observations.items():
            watch = self._files.get(path)
            if watch is None:
                continue
            if seen is None:
                del self._files[path]  # gone again (a temporary file): the delete event handles the rest
            elif seen != watch.seen:
                watch.seen, watch.since = seen, now
            elif now - watch.since >= self.window:
                del self._files[path]
                settled.append(path)
        return settled


@dataclass(frozen=True)
class _Departure:
    known: Known
    at: float


class Departures:
    def __init__(self, keep_seconds: float, clock: Clock = time.monotonic) -> None:
        self.keep = keep_seconds
        self.clock = clock
        self._gone: dict[str, _Departure] = {}

    def add(self, path: str, known: Known) -> None:
        self._gone[path] = _Departure(known, self.clock())

    def cancel(self, path: str) -> None:
        """It came back (deleted and written again)."""
        self._gone.pop(path, None)

    def snapshot(self) -> dict[str, Known]:
        return {path: item.known for path, item in self._gone.items()}

    def claim(self, path: str, size: int, mtime_ns: int) -> str | None:
        """The departed file that `path` is, moved; same name preferred when several fit."""
        fits = [p for p, item in self._gone.items() if (item.known.size, item.known.mtime_ns) == (size, mtime_ns)]
        if not fits:
            return None
        name = os.path.basename(path)
        chosen = next((p for p in fits if os.path.basename(p) == name), fits[0] if len(fits) == 1 else None)
        if chosen is not None:
            del self._gone[chosen]
        return chosen

    def forget(self, paths: Iterable[str]) -> None:
        for path in paths:
            self._gone.pop(path, None)

    def expired(self) -> list[str]:
        """Departures older than the window: deleted for good. Removed from the list."""
        now = self.clock()
        old = [path for path, item in self._gone.items() if now - item.at >= self.keep]
        self.forget(old)
        return old
