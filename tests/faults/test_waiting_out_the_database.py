"""The writes that must survive a database outage wait for it (transcriptarr/db/outage.py); others fail at once.

Fast: no service, no server (a refused connection is a real one, to a closed port).
"""

from __future__ import annotations

import asyncio
import socket

import pytest
import structlog
from sqlalchemy.exc import IntegrityError, OperationalError

from transcriptarr.db import outage
from transcriptarr.db.database import Database, Health
from transcriptarr.db.outage import is_unavailable, until_written, watch_database
from transcriptarr.settings import to_async_url


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nobody listens there once the socket is closed


async def test_a_refused_connection_counts_as_the_database_being_away() -> None:
    db = Database(to_async_url(f"postgresql://user:secret@127.0.0.1:{closed_port()}/nowhere"))
    try:
        with pytest.raises(Exception) as raised:
            await db.read(lambda conn: None)
        assert is_unavailable(raised.value)
        health = await db.health()
        assert not health.ok and health.error
    finally:
        await db.close()


def test_a_refused_statement_does_not_count() -> None:
    refused = IntegrityError("INSERT ...", {}, Exception("duplicate key"))
    assert not is_unavailable(refused)
    assert not is_unavailable(ValueError("a bug"))
    assert is_unavailable(OperationalError("SELECT 1", {}, Exception("server closed the connection")))


async def test_until_written_waits_for_the_database_and_says_so_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outage, "_FIRST_RETRY_SECONDS", 0.01)
    tries: list[int] = []

    async def write() -> str:
        tries.append(1)
        if len(tries) < 4:
            raise ConnectionRefusedError(111, "Connect call failed")
        return "stored"

    with structlog.testing.capture_logs() as logs:
        assert await until_written(write, what="job completed", job_id=7) == "stored"
    assert len(tries) == 4
    assert [line["event"] for line in logs] == ["database_write_waiting", "database_write_done"]
    assert logs[0]["job_id"] == 7 and "ConnectionRefusedError" in logs[0]["error"]


async def test_until_written_raises_other_errors_at_once() -> None:
    tries: list[int] = []

    async def write() -> None:
        tries.append(1)
        raise IntegrityError("UPDATE ...", {}, Exception("constraint"))

    with pytest.raises(IntegrityError):
        await until_written(write, what="job completed")
    assert len(tries) == 1


async def test_watch_database_warns_once_naming_the_database_then_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database(to_async_url(f"postgresql://user:secret@127.0.0.1:{closed_port()}/queue"))
    checks: list[int] = []
    check = db.health

    async def counted() -> Health:
        checks.append(1)
        return await check()

    monkeypatch.setattr(db, "health", counted)
    stop = asyncio.Event()
    try:
        with structlog.testing.capture_logs() as logs:
            watching = asyncio.create_task(watch_database(db, stop, every=0.01))
            async with asyncio.timeout(30):
                while len(checks) < 5:  # several checks find it away: still one warning
                    await asyncio.sleep(0.01)
            stop.set()
            await watching
    finally:
        await db.close()
    (warning,) = [line for line in logs if line["event"] == "database_unavailable"]
    assert warning["log_level"] == "warning"
    assert "127.0.0.1" in warning["database"] and "secret" not in warning["database"]
    assert "retrying" in warning["hint"]
