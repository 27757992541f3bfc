"""Giving freed memory back to the operating system.

glibc keeps memory that Python, numpy, CTranslate2 and onnxruntime free in its
heaps, one arena per thread that allocated it, and raises its mmap threshold
after large frees, so later large buffers land in those heaps too. A service
that loads a model, or runs inference in several threads, then shows the high
water mark in its resident memory long after the work is done. `malloc_trim(0)`
hands the free pages of every arena back.
"""

from __future__ import annotations

import ctypes
import time

import structlog

log = structlog.get_logger(__name__)


def return_freed_memory() -> None:
    """Release free heap pages to the OS (glibc only; elsewhere a no-op). Blocking, about 10 ms."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return
    started = time.perf_counter()
    trim(0)
    log.debug("freed_memory_returned", ms=round((time.perf_counter() - started) * 1000, 1))
