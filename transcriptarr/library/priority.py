"""Priority of the jobs the library queues.

The source sets the band (queue/keys.py: Bazarr 400, webhook 300, manual 250,
watcher 200, rescan 100) and LIBRARY_PRIORITY_ORDER an offset from 0 to 99 within
it, so no order can lift a rescan job over a watcher job. The offset is an absolute
scale, not a rank within one scan, so that jobs of different scans compare too:

- newest: by file age on a log scale, 99 for a file modified now, 0 at ten years;
- oldest: the reverse of newest;
- smallest: by size on a log scale, 99 for an empty file, 0 at 100 GB;
- path: 0 for all; a scan queues in path order and the queue takes equal
  priorities first-come, first-served.

A scan also queues its jobs in this order, so files with the same offset follow it
too. Changing a job's priority by hand (`transcriptarr priority`) is kept: the
library never rewrites the priority of a job that exists.
"""

from __future__ import annotations

import math

from transcriptarr.db.models import Source
from transcriptarr.library.config import PriorityOrder
from transcriptarr.queue.keys import SOURCE_PRIORITY

MAX_OFFSET = 99
_TEN_YEARS_DAYS = 3650.0
_HUNDRED_GB_MB = 100_000.0


def priority_offset(order: PriorityOrder, *, size: int, mtime: float, now: float) -> int:
    if order == "newest":
        return _newness(mtime, now)
    if order == "oldest":
        return MAX_OFFSET - _newness(mtime, now)
    if order == "smallest":
        return _log_scale(size / 1_000_000, _HUNDRED_GB_MB)
    return 0


def job_priority(source: Source, order: PriorityOrder, *, size: int, mtime: float, now: float) -> int:
    return SOURCE_PRIORITY[source] + priority_offset(order, size=size, mtime=mtime, now=now)


def sort_key(order: PriorityOrder, *, path: str, size: int, mtime: float) -> tuple[float, str]:
    """Queue in this order (ascending) so that ties in priority follow the configured order."""
    if order == "newest":
        return (-mtime, path)
    if order == "oldest":
        return (mtime, path)
    if order == "smallest":
        return (float(size), path)
    return (0.0, path)


def _newness(mtime: float, now: float) -> int:
    age_days = max(0.0, now - mtime) / 86_400
    return _log_scale(age_days, _TEN_YEARS_DAYS)


def _log_scale(value: float, top: float) -> int:
    """MAX_OFFSET at 0, falling on a log scale to 0 at `top` and beyond."""
    share = min(1.0, math.log1p(max(0.0, value)) / math.log1p(top))
    return round(MAX_OFFSET * (1.0 - share))
