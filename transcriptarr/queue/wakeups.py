"""PostgreSQL: an idle worker starts within a moment of a job being queued on any node.

Whatever makes a job claimable (enqueue, retry, release, lease recovery) also sends
`pg_notify('transcriptarr_jobs', '')` in the same transaction (`JobQueue._announce`), and
PostgreSQL delivers it, at commit, to every connection that listens. A node that runs
workers keeps one such connection and wakes its pool on each notification. Polling
(`PoolConfig.poll_seconds`) stays the fallback: on SQLite and MariaDB, and while this
connection is down.

The connection is watched: when the server closes it (restart, `pg_terminate_backend`)
or it stops answering (checked every `check_seconds`), it is replaced, retrying with a
growing delay. Each (re)connect wakes the pool once, for jobs queued while nobody listened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog

from transcriptarr.db.database import Database
from transcriptarr.queue.jobqueue import JOBS_CHANNEL
from transcriptarr.queue.pg_fastpath import asyncpg_connect_kwargs

log = structlog.get_logger(__name__)

CHANNEL = JOBS_CHANNEL
# How the connection shows in pg_stat_activity (and how tests find it).
APPLICATION_NAME = "transcriptarr-wakeups"


class JobWakeups:
    def __init__(
        self,
        connect_kwargs: dict[str, Any],
        wake: Callable[[], None],
        *,
        first_retry_seconds: float = 0.5,
        max_retry_seconds: float = 30.0,
        check_seconds: float = 30.0,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._connect_kwargs = connect_kwargs
        self._wake = wake
        self.first_retry_seconds = first_retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.check_seconds = check_seconds
        self.timeout_seconds = timeout_seconds

    @classmethod
    def for_database(cls, db: Database, wake: Callable[[], None], **options: float) -> JobWakeups:
        return cls(asyncpg_connect_kwargs(db, application_name=APPLICATION_NAME), wake, **options)

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until `stop`, reconnecting whenever the connection is lost."""
        delay = self.first_retry_seconds
        while not stop.is_set():
            try:
                conn = await asyncpg.connect(**self._connect_kwargs, timeout=self.timeout_seconds)
            except Exception as exc:  # server down or unreachable: workers poll meanwhile
                log.warning("wakeups_unavailable", channel=CHANNEL, error=_describe(exc), retry_seconds=delay)
                await _wait(stop, delay)
                delay = min(delay * 2, self.max_retry_seconds)
                continue
            try:
                lost = await self._listen(conn, stop)
            finally:
                await _close(conn)
            if lost is None:
                return
            delay = self.first_retry_seconds
            log.warning("wakeups_lost", channel=CHANNEL, error=lost, retry_seconds=delay)
            await _wait(stop, delay)

    async def _listen(self, conn: Any, stop: asyncio.Event) -> str | None:
        """Wake the pool on each notification; why the connection was lost, or None once stopped."""
        closed = asyncio.Event()
        conn.add_termination_listener(lambda _conn: closed.set())
        try:
            await conn.add_listener(CHANNEL, self._notified)
        except Exception as exc:
            return _describe(exc)
        log.info("wakeups_listening", channel=CHANNEL)
        self._wake()  # anything queued while nobody listened
        while not stop.is_set():
            await _wait_any(stop, closed, self.check_seconds)
            if closed.is_set():
                return "the database closed the connection"
            if stop.is_set():
                break
            try:  # a connection can die silently (a dropped network): ask it something now and then
                await conn.fetchval("SELECT 1", timeout=self.timeout_seconds)
            except Exception as exc:
                return _describe(exc)
        return None

    def _notified(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        self._wake()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().removesuffix(":")


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _wait_any(stop: asyncio.Event, closed: asyncio.Event, seconds: float) -> None:
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(closed.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


async def _close(conn: Any) -> None:
    if conn.is_closed():
        return
    try:
        await conn.close(timeout=2)
    except Exception:  # closing anyway
        conn.terminate()
