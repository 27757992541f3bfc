"""Riding out a database outage (a restart, a failover, a network cut).

The service does not stop when its database goes away: HTTP keeps answering (`/health`
says "degraded"), workers keep polling for claims, and the few writes that must not be
lost (a finished job's state, the record of a subtitle just written) wait and are tried
again until the database is back (`until_written`). `watch_database` says once, as a
warning naming the database, that it is away and that the service keeps retrying, and
once more when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from sqlalchemy.exc import DataError, DBAPIError, DisconnectionError, IntegrityError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from transcriptarr.db.database import Database

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Errors where the database refused the statement itself: waiting for it cannot help.
_REFUSED = (IntegrityError, ProgrammingError, DataError)
_FIRST_RETRY_SECONDS = 0.5
_MAX_RETRY_SECONDS = 5.0


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database could not be reached or went away (worth waiting for).

    Drivers report a server that is down, restarting or shutting down in many ways
    (connection refused, closed in mid-statement, "the database system is starting
    up", a pool timeout): everything but a statement the database refused counts.
    """
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or not isinstance(exc, _REFUSED)
    return isinstance(exc, (OSError, TimeoutError, PoolTimeoutError, DisconnectionError))


async def until_written(write: Callable[[], Awaitable[T]], *, what: str, **fields: Any) -> T:
    """`await write()`, again and again while the database is unavailable; its result once it is back.

    For writes that must not be lost, such as a finished job's result: the caller has
    nothing better to do meanwhile. Any other error is raised at once.
    """
    delay, waiting_since = _FIRST_RETRY_SECONDS, None
    while True:
        try:
            result = await write()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            if waiting_since is None:
                waiting_since = time.monotonic()
                log.warning("database_write_waiting", what=what, error=describe_error(exc), **fields)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_SECONDS)
            continue
        if waiting_since is not None:
            waited = round(time.monotonic() - waiting_since, 1)
            log.info("database_write_done", what=what, waited_seconds=waited, **fields)
        return result


async def watch_database(db: Database, stop: asyncio.Event, *, every: float = 5.0) -> None:
    """Check the database every `every` seconds until `stop`; log when it goes away and when it is back."""
    down_since: float | None = None
    while not stop.is_set():
        health = await db.health()
        if not health.ok and down_since is None:
            down_since = time.monotonic()
            log.warning(
                "database_unavailable",
                database=db.describe(),
                error=health.error,
                retry_seconds=every,
                hint=(
                    "Transcriptarr keeps running and retrying: jobs wait, finished results are stored once "
                    "the database is back; "
                    + (
                        "check that the SQLite file and its folder are there and writable"
                        if db.backend.is_sqlite
                        else "check that the database server is running and reachable"
                    )
                ),
            )
        elif health.ok and down_since is not None:
            log.info("database_available", database=db.describe(), outage_seconds=round(time.monotonic() - down_since))
            down_since = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def log_failure(logger: Any, event: str, exc: BaseException, **fields: Any) -> None:
    """A failed background write or read: a warning, unless the database is away.

    During an outage `watch_database` has already said so once; repeating it for
    every heartbeat and poll would bury the one line that matters, so those go to debug.
    """
    if is_unavailable(exc):
        logger.debug(event, error=describe_error(exc), database_unavailable=True, **fields)
    else:
        logger.warning(event, error=describe_error(exc), **fields)


def describe_error(exc: BaseException) -> str:
    """One line: the exception's type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
