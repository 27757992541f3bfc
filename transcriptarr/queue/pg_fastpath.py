"""PostgreSQL: the queue's hot statements, claim and complete, sent straight through asyncpg.

Why this exists: `benchmarks/queue_bench.py --backend postgresql --jobs 5000 --claimers 8`
ran at 420-580 jobs/s on the 2-core test machine (load 2-4), for two reasons:
- client CPU: through SQLAlchemy, a claim plus a complete cost 810-850 µs per job (pool
  checkout and return, greenlet hops, the DBAPI adapter, result processing); here,
  150-170 µs. SQLAlchemy's checkout alone, even as `engine.raw_connection()`, costs
  65 µs per statement: hence a pool of our own;
- server CPU: 1.9-2.1 ms per job, from the claim's plan (see PLANNER_SETTINGS); here,
  240-290 µs.
With both, 3,050-3,900 jobs/s at load 3-4 (2,300-3,200 at load 5.5). Fixing the plan
alone, on the SQLAlchemy path, gave 1,300-1,800 jobs/s at load 1-1.5.

What stays the same, checked by tests/integration/test_pg_fastpath.py:
- the SQL: `JobQueue._build_claim_statements`' `UPDATE ... WHERE id = ANY(ARRAY(SELECT
  ... FOR UPDATE SKIP LOCKED)) RETURNING` and `complete`'s owned-job `UPDATE`, each a
  single statement in autocommit, atomic on its own (as `Database.write_one`);
- the `Job` objects (timestamps become aware UTC, JSON is decoded, as SQLAlchemy's
  types do) and the values written;
- the errors: SQLAlchemy's `DBAPIError` family, as the dialect translates them, with
  `connection_invalidated` set when the connection broke.

Connections: at most `size` (the database's pool size: that many server connections on top
of SQLAlchemy's pool), made with the arguments SQLAlchemy's dialect derives from
the same URL, reused last in, first out. One found closed (server restart) is dropped
when next taken; one that failed with anything but a database error, or was cancelled
mid-statement, is dropped at once; the next use connects afresh.

Everything else in the queue, and SQLite and MariaDB, stays on SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import JSON
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from transcriptarr.db.database import Database
from transcriptarr.db.models import Job, JobState, Stage, UTCDateTime
from transcriptarr.queue.claim_order import order_by_sql
from transcriptarr.queue.jobqueue import JOBS, job_from_values

_NAMES = tuple(column.name for column in JOBS.c)
_RETURNING = ", ".join(_NAMES)
_TIMESTAMPS = frozenset(column.name for column in JOBS.c if isinstance(column.type, UTCDateTime))
_JSON = frozenset(column.name for column in JOBS.c if isinstance(column.type, JSON))

# The claim order (queue/claim_order.py), as SQLAlchemy's asyncpg dialect writes it.
_CLAIM_ORDER = order_by_sql(make_url("postgresql+asyncpg://").get_dialect()())

# $1 now, $2 lease until, $3 worker, $4 node, $5 limit.
CLAIM_SQL = f"""\
UPDATE jobs SET state = '{JobState.PROCESSING}', stage = '{Stage.PENDING}', worker = $3, node = $4,
    progress = 0.0, attempts = jobs.attempts + 1, started_at = $1, updated_at = $1, heartbeat_at = $1,
    lease_expires_at = $2, cancel_requested = false
WHERE jobs.id = ANY(ARRAY(
    SELECT jobs.id FROM jobs
    WHERE jobs.state = '{JobState.QUEUED}' AND jobs.next_attempt_at <= $1
    ORDER BY {_CLAIM_ORDER}
    LIMIT $5 FOR UPDATE SKIP LOCKED))
RETURNING {_RETURNING}"""

# The claim must walk ix_jobs_claim in order and stop at the first unlocked row. Without
# fresh statistics (a new table, or a burst of enqueues since the last ANALYZE) the
# planner takes `state = 'queued'` for rare and may instead bitmap-scan and sort every
# queued row, on each claim: 1.5-2 ms of server CPU at 5,000 queued jobs (the benchmark
# then ran at 470-710 jobs/s, even on this fast path), growing with the queue. These
# connections run nothing but the statements here, none of which needs a sort.
PLANNER_SETTINGS = {"enable_sort": "off"}

# $1 job id, $2 worker, then the new values.
_OWNED = f"WHERE id = $1 AND worker = $2 AND state = '{JobState.PROCESSING}'"


def to_db(column: str, value: Any) -> Any:
    """A Python value as asyncpg takes it for `column` (what SQLAlchemy's types do on bind)."""
    if column in _JSON:
        return json.dumps(value)  # None too: SQLAlchemy's JSON stores it as JSON null
    if column in _TIMESTAMPS:
        return _naive_utc(value)
    return value


def _naive_utc(value: datetime | None) -> datetime | None:
    """As `UTCDateTime.process_bind_param`."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None)


def values_from_db(record: Mapping[str, Any]) -> dict[str, Any]:
    """An asyncpg record as SQLAlchemy's types give it: aware UTC timestamps, decoded JSON."""
    values = dict(record.items())
    for name in _TIMESTAMPS:
        if (stamp := values[name]) is not None:
            values[name] = stamp.replace(tzinfo=UTC)
    for name in _JSON:
        if (text := values[name]) is not None:
            values[name] = json.loads(text)
    return values


class DriverPool:
    """Up to `size` asyncpg connections, reused last in, first out."""

    def __init__(self, connect_kwargs: dict[str, Any], size: int) -> None:
        self._connect_kwargs = connect_kwargs
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Any] = []  # asyncpg.Connection

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        async with self._slots:
            idle = self._idle  # a connection taken before `close` is not given back after it
            conn = None
            while idle and conn is None:
                conn = idle.pop()
                if conn.is_closed():
                    conn = None
            if conn is None:
                conn = await asyncpg.connect(**self._connect_kwargs)
            try:
                yield conn
            except (asyncpg.PostgresError, asyncpg.InterfaceError):
                self._put_back(conn, idle)  # refused by the server or by asyncpg: fine, unless it closed
                raise
            except BaseException:
                conn.terminate()  # a socket error, or cancelled mid-statement: its state is unknown
                raise
            self._put_back(conn, idle)

    def _put_back(self, conn: Any, idle: list[Any]) -> None:
        if idle is self._idle and not conn.is_closed() and not conn.is_in_transaction():
            idle.append(conn)
        else:
            conn.terminate()

    async def close(self) -> None:
        """Close the idle connections, and those in use as they come back. (Usable again after.)"""
        idle, self._idle = self._idle, []
        for conn in idle:
            try:
                await conn.close(timeout=2)
            except Exception:  # closing anyway
                conn.terminate()


def asyncpg_connect_kwargs(db: Database, **server_settings: str) -> dict[str, Any]:
    """`asyncpg.connect` arguments for `db`, as SQLAlchemy's dialect derives them from the URL."""
    _, connect_args = db.engine.dialect.create_connect_args(db.engine.url)
    kwargs = dict(connect_args)
    for option in ("prepared_statement_cache_size", "prepared_statement_name_func", "async_creator_fn"):
        kwargs.pop(option, None)  # SQLAlchemy's own, not asyncpg's
    kwargs["server_settings"] = {**kwargs.get("server_settings", {}), **server_settings}
    return kwargs


class PgFastPath:
    def __init__(self, db: Database, size: int) -> None:
        dialect = db.engine.dialect
        kwargs = asyncpg_connect_kwargs(db, **PLANNER_SETTINGS)
        self._dialect = dialect
        self._pool = DriverPool(kwargs, size)
        self._complete_sql: dict[tuple[str, ...], str] = {}

    async def claim(self, now: datetime, lease_until: datetime, worker: str, node: str, limit: int) -> list[Job]:
        args = (_naive_utc(now), _naive_utc(lease_until), worker, node, limit)
        rows = await self._run(CLAIM_SQL, args, lambda conn: conn.fetch(CLAIM_SQL, *args))
        return [job_from_values(values_from_db(row)) for row in rows]

    async def update_owned(self, job_id: int, worker: str, values: Mapping[str, Any]) -> bool | None:
        """`UPDATE` the job if `worker` owns it; whether it did. None: a name is no column (ask SQLAlchemy)."""
        columns = tuple(values)
        sql = self._complete_sql.get(columns)
        if sql is None:
            if not set(columns) <= set(_NAMES):
                return None
            assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, start=3))
            sql = self._complete_sql[columns] = f"UPDATE jobs SET {assignments} {_OWNED}"
        args = (job_id, worker, *(to_db(column, value) for column, value in values.items()))
        status = await self._run(sql, args, lambda conn: conn.execute(sql, *args))
        return bool(status == "UPDATE 1")

    async def _run(self, sql: str, args: tuple[Any, ...], call: Callable[[Any], Awaitable[Any]]) -> Any:
        conn = None
        try:
            async with self._pool.connection() as conn:
                return await call(conn)
        except Exception as exc:
            invalidated = conn is not None and conn.is_closed()
            raise self._sqlalchemy_error(exc, sql, args, invalidated=invalidated) from exc

    def _sqlalchemy_error(self, exc: Exception, sql: str, args: tuple[Any, ...], *, invalidated: bool) -> Exception:
        """The exception SQLAlchemy raises for `exc` from the same statement."""
        dbapi = self._dialect.loaded_dbapi
        try:  # the dialect's own translation of asyncpg's errors into its DBAPI ones
            AsyncAdapt_asyncpg_connection._handle_exception_no_connection(dbapi, exc)
        except dbapi.Error as translated:
            return DBAPIError.instance(
                sql, args, translated, dbapi.Error, connection_invalidated=invalidated, dialect=self._dialect
            )
        except Exception:  # not a driver error (an OSError, say): SQLAlchemy lets those through too
            return exc
        return exc

    async def close(self) -> None:
        await self._pool.close()


def fast_path(db: Database) -> PgFastPath:
    """The fast path of `db`, shared by every queue on it; closed with the database."""
    return db.shared(_open_fast_path)


def _open_fast_path(db: Database) -> PgFastPath:
    path = PgFastPath(db, db.pool_size)
    db.on_close(path.close)
    return path
