"""A bound on each database call made while answering an HTTP request (set by api/stall.py).

A client must get an answer while the database stalls: a server that stopped answering
(frozen, overloaded, a network that drops packets without resetting the connection), or
another process holding SQLite's write lock. Inside `calls_bounded(seconds)`, a call through
`Database` (read, write) that has not answered within `seconds` raises `DatabaseStalled`,
which the HTTP layer answers as a 503 saying so.

The call itself is not cancelled but left to finish in the background: cancelling a
statement in flight on a hung server would leave its connection in an unknown state, and a
SQLite write already on the writer thread runs anyway. So a write may still take effect
after its request was answered 503; every write a client can ask for is safe to ask again
(a repeated enqueue joins the job already there).

The bound is per call, not per request, so a task a request starts (a shared snapshot's
refresh) keeps it; work the service does on its own (workers, the library) has none and
waits the database out (db/outage.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

# Seconds each database call may take in this context; None: no bound (the service's own work).
_BOUND: ContextVar[float | None] = ContextVar("transcriptarr_database_call_bound", default=None)


class DatabaseStalled(TimeoutError):
    """A database call did not answer within the bound of the request it was made for."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the database did not answer within {seconds:g} s (a server that hangs, or another process "
            "holding SQLite's write lock); what was asked may still be done once it answers, asking again is safe"
        )
        self.seconds = seconds


@contextlib.contextmanager
def calls_bounded(seconds: float) -> Iterator[None]:
    """Within this block (and tasks started in it), each database call answers within `seconds` or raises."""
    token = _BOUND.set(seconds)
    try:
        yield
    finally:
        _BOUND.reset(token)


def call_bound() -> float | None:
    return _BOUND.get()


async def within_bound(call: Awaitable[T]) -> T:
    """`await call`, or DatabaseStalled once the current bound has passed (the call goes on by itself)."""
    seconds = _BOUND.get()
    if seconds is None:
        return await call
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.add_done_callback(_retrieve)  # nobody awaits it any more: read its outcome when it comes
        raise DatabaseStalled(seconds)
    return task.result()


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
