"""One async SQLAlchemy engine per backend, with each backend's own settings.

- SQLite: WAL (readers never block the writer), a busy timeout, synchronous=NORMAL
  (safe with WAL), a larger page cache. Transactions are opened by us so that a
  writer can ask for `BEGIN IMMEDIATE` and never deadlock on a lock upgrade.
- PostgreSQL and MariaDB: a connection pool that pings a connection before reuse
  when it has been idle for a while, so a restarted server is survived. (Not on
  every checkout: asyncpg's ping is BEGIN; `;`; ROLLBACK, three round trips, which
  tripled the cost of a busy queue's short transactions.)
- MariaDB/MySQL: utf8mb4, pool recycle (the server drops idle connections) and
  READ COMMITTED: under InnoDB's default REPEATABLE READ, the claim's
  `SELECT ... FOR UPDATE SKIP LOCKED` takes next-key (gap) locks, and concurrent
  claimers then deadlock (error 1213) when their UPDATE moves rows in the state
  indexes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

# Execution option that makes a SQLite transaction take the write lock up front.
SQLITE_BEGIN = "sqlite_begin"
# A pooled connection idle for longer than this is pinged before it is used again.
PING_AFTER_IDLE_SECONDS = 1.0


@dataclass(frozen=True)
class Backend:
    name: str  # sqlite, postgresql, mariadb

    @property
    def is_sqlite(self) -> bool:
        return self.name == "sqlite"

    @property
    def skip_locked(self) -> bool:
        return self.name in ("postgresql", "mariadb")


def backend_of(url: URL) -> Backend:
    name = url.get_backend_name()
    return Backend("mariadb" if name in ("mysql", "mariadb") else name)


def create_engine(url: URL, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    backend = backend_of(url)
    if backend.is_sqlite:
        return _sqlite_engine(url, echo=echo)
    kwargs: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": pool_size,
        "pool_timeout": 30,
        "echo": echo,
    }
    if backend.name == "mariadb":
        kwargs["pool_recycle"] = 3600
        kwargs["isolation_level"] = "READ COMMITTED"
        url = url.update_query_dict({"charset": "utf8mb4"})
    engine = create_async_engine(url, **kwargs)
    _ping_when_idle(engine.sync_engine, PING_AFTER_IDLE_SECONDS)
    return engine


def _ping_when_idle(sync_engine: Engine, idle_seconds: float) -> None:
    """Pre-ping, but only connections that sat in the pool for `idle_seconds` or more."""

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            sync_engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # any failure: the pool discards it and connects afresh
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc


def _sqlite_engine(url: URL, *, echo: bool) -> AsyncEngine:
    if url.database:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
    _configure_sqlite(engine.sync_engine)
    return engine


def create_sqlite_sync_engine(url: URL) -> Engine:
    """The same SQLite file through the standard library driver, for the writer thread."""
    engine = create_sync_engine(url.set(drivername="sqlite+pysqlite"), connect_args={"timeout": 30})
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(sync_engine: Engine) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        # Let us emit BEGIN ourselves (the driver's implicit BEGIN is DEFERRED).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA busy_timeout=30000",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA cache_size=-16000",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


async def sqlite_pragmas(conn: AsyncConnection) -> dict[str, Any]:
    """The pragmas a connection really runs with (for tests and `db` diagnostics)."""
    values: dict[str, Any] = {}
    for name in ("journal_mode", "busy_timeout", "synchronous"):
        values[name] = (await conn.execute(text(f"PRAGMA {name}"))).scalar()
    return values
