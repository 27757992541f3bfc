"""Stopping on SIGTERM/SIGINT within a bound, whatever the database does (issue 15).

First signal: `stop` is set; running jobs get SHUTDOWN_GRACE_SECONDS to finish and then go
back to the queue (workers/pool.py). A second signal hurries the stop: running jobs are
handed back at once.

Every write of a stop waits for the database, and one that hangs (a server that stopped
answering) would hold the process forever. So the first signal also starts a watchdog
thread: if the process is still there STOP_ALLOWANCE_SECONDS after the grace (after a
second signal: STOP_ALLOWANCE_SECONDS after it), it logs one `shutdown_forced` warning and
exits. Nothing is lost by that: a job not handed back goes back to the queue when this node
starts again (it requeues its own jobs at once) or when its lease runs out, and resumes
from its checkpoint; a result not stored was checkpointed when the transcription ended.

The handlers are plain `signal.signal` handlers, not the event loop's: they act even while
the loop is blocked (closing SQLite joins its writer thread, which may wait on another
process's lock), and they only set flags and wake the loop and the watchdog: logging from
inside a signal handler could re-enter a write to the log stream in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import structlog

log = structlog.get_logger(__name__)

# After the grace, the rest of a stop gets this long: running jobs stop at their next segment and
# store their checkpoint, are handed back, the database and HTTP close.
STOP_ALLOWANCE_SECONDS = 10.0
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopOnSignals:
    """SIGTERM/SIGINT handling for one run of the service (`install`, then `restore`)."""

    def __init__(self, stop: asyncio.Event, *, grace_seconds: float) -> None:
        self._stop = stop
        self._grace = grace_seconds
        self._loop = asyncio.get_running_loop()
        self._hurry: list[Callable[[], None]] = []
        self._previous: dict[int, Any] = {}
        self._signals = 0
        self._deadline = float("inf")  # monotonic; the watchdog ends the process then
        self._deadline_moved = threading.Event()
        self.exit_status = 0  # what a forced exit reports: the run's own status once it is known

    def install(self) -> None:
        for sig in _SIGNALS:
            with contextlib.suppress(ValueError):  # not the main thread: the caller handles signals
                self._previous[sig] = signal.signal(sig, self._on_signal)

    def restore(self) -> None:
        """The handlers from before `install` (a watchdog already started stays: it guards the exit)."""
        for sig, previous in self._previous.items():
            signal.signal(sig, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()

    def on_hurry(self, callback: Callable[[], None]) -> None:
        """Call `callback` in the event loop on a second signal (the pool hands its jobs back)."""
        self._hurry.append(callback)

    def finished(self, status: int) -> int:
        """The run ended with `status`: a forced exit after this (a thread that will not end) reports it."""
        self.exit_status = status
        return status

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        now = time.monotonic()
        if self._signals == 1:
            self._deadline = now + self._grace + STOP_ALLOWANCE_SECONDS
            threading.Thread(target=self._watch, name="shutdown-watchdog", daemon=True).start()
            self._in_loop(lambda: self._requested(signum))
        else:
            self._deadline = min(self._deadline, now + STOP_ALLOWANCE_SECONDS)
            self._deadline_moved.set()
            self._in_loop(lambda: self._hurried(signum))

    def _in_loop(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: the watchdog still ends the process
            self._loop.call_soon_threadsafe(callback)

    def _requested(self, signum: int) -> None:
        log.info(
            "shutdown_requested",
            signal=signal.Signals(signum).name,
            grace_seconds=self._grace,
            exit_within_seconds=self._grace + STOP_ALLOWANCE_SECONDS,
        )
        self._stop.set()

    def _hurried(self, signum: int) -> None:
        log.warning(
            "shutdown_hurried",
            signal=signal.Signals(signum).name,
            exit_within_seconds=STOP_ALLOWANCE_SECONDS,
            reason="a second stop signal: running jobs are handed back now instead of at the end of the grace",
        )
        self._stop.set()
        for callback in self._hurry:
            callback()

    def _watch(self) -> None:
        while (left := self._deadline - time.monotonic()) > 0:
            self._deadline_moved.wait(left)
            self._deadline_moved.clear()
        log.warning(
            "shutdown_forced",
            exit_status=self.exit_status,
            reason="the stop did not end in time (a database that does not answer holds its writes); jobs not "
            "handed back return to the queue when this node starts again or when their lease runs out",
        )
        for stream in (sys.stderr, sys.stdout):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(self.exit_status)
