"""Self-test for tests/servers.py: real PostgreSQL / MariaDB servers start, serve, stop and restart."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.servers import RunningServer, ensure_installed, start_mariadb, start_postgres

Starter = Callable[..., RunningServer]

STARTERS: dict[str, Starter] = {"postgresql": start_postgres, "mariadb": start_mariadb}


def _require(kind: str) -> None:
    reason = ensure_installed("postgresql" if kind == "postgresql" else "mariadb")
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"database server binaries missing on CI: {reason}")
    pytest.skip(reason)


def _engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.drivername == "postgresql":
        # SQLAlchemy 2.1 maps bare postgresql:// to psycopg 3, which is not installed; use psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return sa.create_engine(parsed, poolclass=NullPool)


def _scalar(url: str, sql: str) -> object:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar_one()
    finally:
        engine.dispose()


def _execute(url: str, *statements: str) -> None:
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def _port_closed(server: RunningServer) -> bool:
    try:
        with socket.create_connection((server.host, server.port), timeout=1):
            return False
    except OSError:
        return True


@pytest.fixture(params=sorted(STARTERS))
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    _require(value)
    return value


@pytest.fixture
def server(kind: str, tmp_path: Path) -> Iterator[RunningServer]:
    began = time.monotonic()
    srv = STARTERS[kind](tmp_path)
    print(f"{kind} initialised and started in {time.monotonic() - began:.2f}s")
    try:
        yield srv
    finally:
        srv.stop()


def test_serves_stops_and_restarts_on_same_port(server: RunningServer) -> None:
    assert server.url.startswith(("postgresql://", "mariadb+pymysql://"))
    assert server.host == "127.0.0.1"
    assert f"@127.0.0.1:{server.port}/" in server.url
    assert server.running
    assert _scalar(server.url, "SELECT 1") == 1
    assert _scalar(server.admin_url, "SELECT 1") == 1
    _execute(server.url, "CREATE TABLE probe (id INTEGER PRIMARY KEY)", "INSERT INTO probe (id) VALUES (7)")

    server.stop()
    server.stop()  # idempotent
    assert not server.running
    assert _port_closed(server)
    with pytest.raises(sa.exc.OperationalError):
        _scalar(server.url, "SELECT 1")

    began = time.monotonic()
    server.start()
    print(f"{server.name} restarted in {time.monotonic() - began:.2f}s")
    assert server.running
    assert _scalar(server.url, "SELECT 1") == 1
    assert _scalar(server.url, "SELECT id FROM probe") == 7


def test_crash_safe_server_keeps_commits_across_kill(kind: str, tmp_path: Path) -> None:
    with STARTERS[kind](tmp_path, crash_safe=True) as server:
        _execute(server.url, "CREATE TABLE probe (id INTEGER PRIMARY KEY)", "INSERT INTO probe (id) VALUES (1)")
        server.kill()
        server.kill()  # idempotent
        assert not server.running
        assert _port_closed(server)
        server.start()  # runs crash recovery
        assert _scalar(server.url, "SELECT COUNT(*) FROM probe") == 1
    assert not server.running
