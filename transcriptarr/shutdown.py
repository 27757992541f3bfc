"""Stopping on SIGTERM/SIGINT within a bound, whatever the database does (issue 15).

SHUTDOWN_GRACE_SECONDS is the whole stop: the process is gone that long after the first
signal, the time a container manager's stop timeout has to cover. Running jobs may finish
until the hand-back reserve (`StopBudget`) is all that is left, then they stop at their next
segment, store their checkpoint and go back to the queue (workers/pool.py). A second signal
hurries the stop: running jobs are handed back at once.

Every write of a stop waits for the database, and one that hangs (a server that stopped
answering) would hold the process forever. So the first signal also starts a watchdog
thread: if the process is still there at the end of the grace (after a second signal: at
most HAND_BACK_RESERVE_SECONDS after it), it logs one `shutdown_forced` warning and exits.
Nothing is lost by that: a job not handed back goes back to the queue when this node
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
from dataclasses import dataclass
from types import FrameType
from typing import Any

import structlog

log = structlog.get_logger(__name__)

# The end of the grace kept for the stop itself: running jobs stop at their next segment and store
# their checkpoint, are handed back, follow-ups in flight settle, the database and HTTP close.
HAND_BACK_RESERVE_SECONDS = 10.0
# However short the grace, handing the jobs back gets this long: a grace of 0 means "do not wait
# for the jobs", not "leave them running in the database until their lease runs out".
SHORTEST_STOP_SECONDS = 5.0
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class StopBudget:
    """How SHUTDOWN_GRACE_SECONDS is spent: first the running jobs' time to finish, then the hand-back."""

    grace_seconds: float

    @property
    def reserve_seconds(self) -> float:
        """The hand-back's part: HAND_BACK_RESERVE_SECONDS, or half of a shorter grace."""
        return min(HAND_BACK_RESERVE_SECONDS, self.grace_seconds / 2)

    @property
    def jobs_seconds(self) -> float:
        """How long running jobs may go on finishing after the signal."""
        return self.grace_seconds - self.reserve_seconds

    @property
    def exit_within_seconds(self) -> float:
        """The process is gone this long after the first signal, whatever the database does."""
        return max(self.grace_seconds, SHORTEST_STOP_SECONDS)


class StopOnSignals:
    """SIGTERM/SIGINT handling for one run of the service (`install`, then `restore`)."""

    def __init__(self, stop: asyncio.Event, budget: StopBudget) -> None:
        self._stop = stop
        self._budget = budget
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
            self._deadline = now + self._budget.exit_within_seconds
            threading.Thread(target=self._watch, name="shutdown-watchdog", daemon=True).start()
            self._in_loop(lambda: self._requested(signum))
        else:
            self._deadline = min(self._deadline, now + HAND_BACK_RESERVE_SECONDS)
            self._deadline_moved.set()
            self._in_loop(lambda: self._hurried(signum))

    def _in_loop(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: the watchdog still ends the process
            self._loop.call_soon_threadsafe(callback)

    def _requested(self, signum: int) -> None:
        log.info(
            "shutdown_requested",
            signal=signal.Signals(signum).name,
            grace_seconds=self._budget.grace_seconds,
            jobs_seconds=self._budget.jobs_seconds,
            exit_within_seconds=self._budget.exit_within_seconds,
        )
        self._stop.set()

    def _hurried(self, signum: int) -> None:
        log.warning(
            "shutdown_hurried",
            signal=signal.Signals(signum).name,
            exit_within_seconds=round(min(HAND_BACK_RESERVE_SECONDS, self._deadline - time.monotonic()), 1),
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
