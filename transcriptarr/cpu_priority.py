"""The workers' CPU priority (WORKER_NICE): the nice value of inference threads and of ffmpeg.

Linux schedules threads one by one, and a thread or process starts with the nice
value of the thread that created it. So the service's event loop (HTTP, queue)
keeps the process's priority while the workers yield: the model is loaded in a
thread at WORKER_NICE (CTranslate2 creates its compute threads there), the rest of
the inference runs in threads set to it, and ffmpeg is started with it.

Raising a nice value is always allowed; lowering it below the process's own needs
root or CAP_SYS_NICE. Where that is missing the threads keep the process's value,
and the service says so once at start-up (`check_worker_nice`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import structlog

log = structlog.get_logger(__name__)


def take_nice(nice: int | None) -> None:
    """Give the calling thread this nice value, if it may (None: leave it as it is)."""
    if nice is None:
        return
    # Not permitted (warned at start-up), or no setpriority on this system: the thread keeps its value.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


def thread_nice(native_id: int | None = None) -> int:
    """The nice value of a thread of this process (default: the calling one)."""
    return os.getpriority(os.PRIO_PROCESS, native_id or threading.get_native_id())


def niced_threads(nice: int | None, name: str, max_workers: int = 64) -> ThreadPoolExecutor:
    """A thread pool whose threads run at `nice` (threads are made as needed, up to `max_workers`)."""
    return ThreadPoolExecutor(max_workers, thread_name_prefix=name, initializer=take_nice, initargs=(nice,))


def niced_child(nice: int | None) -> Callable[[], None] | None:
    """A `preexec_fn` that starts a child process (ffmpeg) at `nice`, before it makes threads of its own."""
    return None if nice is None else functools.partial(take_nice, nice)


def nice_problem(nice: int | None) -> str | None:
    """Why this process cannot run its workers at `nice`; None when it can. Tried on a throwaway thread."""
    if nice is None or not hasattr(os, "setpriority"):
        return None
    current = thread_nice()
    refused: list[OSError] = []

    def attempt() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError as exc:
            refused.append(exc)

    trial = threading.Thread(target=attempt, name="worker-nice-check")
    trial.start()
    trial.join()
    if not refused:
        return None
    return (
        f"WORKER_NICE={nice} is below this process's nice value {current}, and lowering it needs root or "
        f"CAP_SYS_NICE ({refused[0].strerror}): the workers run at nice {current}. Set WORKER_NICE to {current} "
        "or more, or give the container CAP_SYS_NICE (docker run --cap-add SYS_NICE)"
    )


def check_worker_nice(nice: int | None) -> None:
    """Say once, at start-up, when WORKER_NICE cannot be taken (the service goes on at the process's value)."""
    problem = nice_problem(nice)
    if problem is not None:
        log.warning("worker_nice_not_permitted", worker_nice=nice, process_nice=thread_nice(), error=problem)
