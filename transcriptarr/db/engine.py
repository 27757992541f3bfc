"""One async SQLAlchemy engine per backend, with each backend's own settings.

- SQLite: WAL (readers never block the writer), a busy timeout, synchronous=NORMAL
  (safe with WAL), a larger page cache. Transactions are opened by us so that a
  writer can ask for `BEGIN IMMEDIATE` and never deadlock on a lock upgrade.
- PostgreSQL: a connection pool with pre-ping, so a restarted server is survived.
- MariaDB/MySQL: utf8mb4 and pool recycle (the server drops idle connections).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

# Execution option that makes a SQLite transaction take the write lock up front.
SQLITE_BEGIN = "sqlite_begin"


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
        "pool_pre_ping": True,
        "pool_size": pool_size,
        "max_overflow": pool_size,
        "pool_timeout": 30,
        "echo": echo,
    }
    if backend.name == "mariadb":
        kwargs["pool_recycle"] = 3600
        url = url.update_query_dict({"charset": "utf8mb4"})
    return create_async_engine(url, **kwargs)


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
