"""The database as the rest of the service sees it: transactions, health, closing.

Queries are written once, as plain functions of a SQLAlchemy `Connection`, and
run here in the way that suits the backend:

- PostgreSQL and MariaDB: on the async engine (`AsyncConnection.run_sync`), many
  transactions at once. On PostgreSQL, `write_one` runs work that is a single
  statement without BEGIN/COMMIT (a statement is atomic on its own), saving two of
  its three round trips.
- SQLite: it has a single writer anyway, so every write transaction of this
  process runs on one dedicated thread, start to finish in one hop, opened with
  `BEGIN IMMEDIATE` so it never has to upgrade a read lock (which could fail with
  "database is locked"). Other processes wait on the busy timeout. Reads use the
  aiosqlite engine and run alongside (WAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from transcriptarr.db import migrate
from transcriptarr.db.call_bound import within_bound
from transcriptarr.db.engine import SQLITE_BEGIN, Backend, backend_of, create_engine, create_sqlite_sync_engine

T = TypeVar("T")
_DEADLOCK_RETRIES = 3
HEALTH_TIMEOUT_SECONDS = 5.0
# A write that has waited longer than this makes `/health` say the database is degraded (api/views.py).
WRITE_STALL_SECONDS = 5.0
# MariaDB/MySQL: 1213 deadlock found, 1205 lock wait timeout.
_MYSQL_RETRYABLE = (1213, 1205)


def _is_deadlock(exc: OperationalError) -> bool:
    args: tuple[object, ...] = tuple(getattr(exc.orig, "args", ()))
    return bool(args) and args[0] in _MYSQL_RETRYABLE


@dataclass(frozen=True)
class Health:
    ok: bool
    backend: str
    schema_revision: str | None
    schema_current: bool
    error: str | None = None


class Database:
    def __init__(self, url: URL, *, pool_size: int = 10) -> None:
        self.url = url
        self.backend: Backend = backend_of(url)
        self.pool_size = pool_size
        self.engine: AsyncEngine = create_engine(url, pool_size=pool_size)
        self._on_close: list[Callable[[], Awaitable[None]]] = []
        self._shared: dict[Callable[[Database], object], object] = {}  # by the function that made it
        # When each write still under way was asked for (by token): the oldest tells a stall. A write
        # that failed for want of the database (SQLite: locked past the busy timeout) is retried by
        # its caller as a new write, so the stall runs from the first such failure to the next success.
        self._writes_started: dict[int, float] = {}
        self._write_tokens = itertools.count()
        self._failing_since: float | None = None
        self._truncate_journal = False
        self._sqlite_writer: Engine | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        if self.backend.is_sqlite:
            self._sqlite_writer = create_sqlite_sync_engine(url)
            self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one write transaction (committed on return, rolled back on error)."""
        with self._write_under_way():
            return await within_bound(self._write(work))

    async def _write(self, work: Callable[[Connection], T]) -> T:
        if self._sqlite_writer is None:
            for attempt in range(_DEADLOCK_RETRIES):
                try:
                    async with self.engine.begin() as conn:
                        return await conn.run_sync(work)
                except OperationalError as exc:
                    # InnoDB rolled the whole transaction back: running it again is safe.
                    if not _is_deadlock(exc) or attempt == _DEADLOCK_RETRIES - 1:
                        raise
            raise AssertionError("unreachable")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_thread, self._sqlite_transaction, work)

    async def write_one(self, work: Callable[[Connection], T]) -> T:
        """Like `write`, for `work` that issues exactly one statement.

        PostgreSQL runs it in autocommit mode: the statement is its own transaction,
        with no BEGIN and COMMIT round trips. (On MariaDB, switching autocommit costs
        round trips of its own, and it has no BEGIN round trip to save.)
        """
        if self.backend.name != "postgresql":
            return await self.write(work)
        with self._write_under_way():
            return await within_bound(self._autocommit(work))

    async def _autocommit(self, work: Callable[[Connection], T]) -> T:
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            return await conn.run_sync(work)

    @contextlib.contextmanager
    def _write_under_way(self) -> Iterator[None]:
        token, started = next(self._write_tokens), time.monotonic()
        self._writes_started[token] = started
        try:
            yield
        except (OperationalError, OSError):
            self._failing_since = min(started, self._failing_since or started)
            raise
        else:
            self._failing_since = None
        finally:
            del self._writes_started[token]

    def oldest_write_seconds(self) -> float:
        """How long the oldest write still under way has waited (0 when none is).

        A write waits here while another process holds SQLite's write lock (up to the busy
        timeout, then it is tried again), or while a database server does not answer; reads
        and `SELECT 1` may meanwhile go through, so `health` alone would not see it."""
        starts = list(self._writes_started.values())
        if self._failing_since is not None:
            starts.append(self._failing_since)
        return time.monotonic() - min(starts) if starts else 0.0

    def _sqlite_transaction(self, work: Callable[[Connection], T]) -> T:
        assert self._sqlite_writer is not None
        with self._sqlite_writer.connect() as conn:
            conn = conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
            with conn.begin():
                return work(conn)

    def _checkpoint_truncate(self) -> None:
        assert self._sqlite_writer is not None
        # The writer's pooled connection: the file opened at start-up, not whatever is at the path now.
        raw = self._sqlite_writer.raw_connection()
        # Best effort on the way out: the service stops either way.
        with contextlib.closing(raw), contextlib.suppress(Exception):
            cursor = raw.cursor()
            cursor.execute("PRAGMA busy_timeout=2000")  # a reader elsewhere must not hold the stop up long
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()

    async def read(self, work: Callable[[Connection], T]) -> T:
        return await within_bound(self._read(work))

    async def _read(self, work: Callable[[Connection], T]) -> T:
        async with self.engine.connect() as conn:
            return await conn.run_sync(work)

    async def upgrade(self) -> tuple[str | None, str | None]:
        return await migrate.upgrade(self.engine)

    async def health(self) -> Health:
        """`SELECT 1` plus the schema version, within HEALTH_TIMEOUT_SECONDS; never raises."""
        try:
            # Bounded: an unreachable host (connect timeout 60 s) or a pool with every connection
            # in use (30 s) must not keep `/health` waiting.
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                revision = await migrate.current_revision(self.engine)
        except TimeoutError:
            return Health(False, self.backend.name, None, False, f"no answer within {HEALTH_TIMEOUT_SECONDS:g} s")
        except Exception as exc:  # any driver error means "not healthy", with its text
            return Health(False, self.backend.name, None, False, f"{type(exc).__name__}: {exc}")
        return Health(True, self.backend.name, revision, revision == migrate.head_revision())

    async def settle_failed_connects(self, within: float = 1.0) -> None:
        """Let aiosqlite's worker threads of connections that failed to open end, up to `within` seconds.

        aiosqlite (0.22) stops such a thread without waiting for it; when the event loop closes first (a
        command that exits because the file cannot be opened), the thread's last reply hits the closed
        loop and prints a traceback under the one-line error. Only for SQLite, only after a failure.
        """
        if not self.backend.is_sqlite:
            return
        deadline = time.monotonic() + within
        for thread in threading.enumerate():
            if thread.name.endswith("(_connection_worker_thread)"):
                await asyncio.to_thread(thread.join, max(0.0, deadline - time.monotonic()))

    def describe(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def shared(self, make: Callable[[Database], T]) -> T:
        """The one `make(self)` of this database, made on first use and kept with it (e.g. a driver pool
        beside the engine's, shared by every queue on this database)."""
        if make not in self._shared:
            self._shared[make] = make(self)
        return self._shared[make]  # type: ignore[return-value]  # made by `make`, so a T

    def on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Have `close` await `callback` first (e.g. to close connections made outside the engine)."""
        self._on_close.append(callback)

    def truncate_journal_at_close(self) -> None:
        """Have `close` move SQLite's journal (WAL) into the file this process has open, and empty it.

        For a database file deleted or replaced under the service (db/sqlite_watch.py): SQLite
        leaves the journal of a file that moved, and a file later put at the path would take
        the journal's pages as its own."""
        self._truncate_journal = True

    async def close(self) -> None:
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            await callback()
        if self._writer_thread is not None:
            if self._truncate_journal:
                await asyncio.get_running_loop().run_in_executor(self._writer_thread, self._checkpoint_truncate)
            self._writer_thread.shutdown(wait=True)
        if self._sqlite_writer is not None:
            self._sqlite_writer.dispose()
        await self.engine.dispose()
