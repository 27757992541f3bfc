"""Shared fixtures: a fresh, migrated database on each backend, and the queue on it.

PostgreSQL and MariaDB are real servers started once per test session in a
temporary directory (tests/servers.py). When one cannot start, its tests fail
with the reason under CI and are skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.servers import RunningServer, ServerError, ensure_installed, start_mariadb, start_postgres
from transcriptarr.db.database import Database
from transcriptarr.queue.jobqueue import JobQueue
from transcriptarr.settings import to_async_url

BACKENDS = ("sqlite", "postgresql", "mariadb")
_database_numbers = itertools.count(1)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """A missing prerequisite fails the run in CI and skips (saying why) elsewhere."""
    if in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _start(kind: str, base: Path) -> RunningServer:
    problem = ensure_installed(kind)  # type: ignore[arg-type]
    if problem:
        unavailable(f"{kind} server cannot run here: {problem}")
    try:
        return start_postgres(base) if kind == "postgresql" else start_mariadb(base)
    except ServerError as exc:
        unavailable(f"{kind} server did not start: {exc}")
        raise


@pytest.fixture(scope="session")
def postgresql_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = _start("postgresql", tmp_path_factory.mktemp("pg"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = _start("mariadb", tmp_path_factory.mktemp("mariadb"))
    yield server
    server.stop()


def new_server_database(server: RunningServer) -> str:
    """Create an empty database on a running server; return its user-style URL."""
    name = f"transcriptarr_t{os.getpid()}_{next(_database_numbers)}"
    admin = make_url(server.url)
    if server.name == "postgresql":
        admin = admin.set(drivername="postgresql+psycopg2")
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return make_url(server.url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A user-style URL (as people write it in DATABASE_URL) to a new, empty database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    server = request.getfixturevalue(f"{request.param}_server")
    return new_server_database(server)


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = Database(to_async_url(db_url))
    await db.upgrade()
    yield db
    await db.close()


@pytest.fixture
async def queue(database: Database) -> JobQueue:
    return JobQueue(database, lease_seconds=30, max_attempts=3, backoff_seconds=10)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide settings: put them back for the next test."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.contextvars.clear_contextvars()
