"""Schema migrations: a database made by an older version upgrades without losing jobs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import inspect, text

from transcriptarr.db import migrate
from transcriptarr.db.database import Database
from transcriptarr.db.models import Base, JobState
from transcriptarr.queue.jobqueue import JobQueue
from transcriptarr.settings import to_async_url


async def test_upgrade_from_first_schema_keeps_queued_jobs(db_url: str) -> None:
    db = Database(to_async_url(db_url))
    try:
        assert await migrate.upgrade(db.engine, "0001") == (None, "0001")
        now = datetime.now(UTC).replace(tzinfo=None)
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO jobs (state, stage, source, priority, media_path, content_key, active_key, task,"
                    " quality, options, progress, created_at, updated_at, attempts, max_attempts,"
                    " next_attempt_at, error_permanent)"
                    " VALUES ('queued', 'pending', 'scan', 100, '/media/old.mkv', :key, :key, 'transcribe',"
                    " 'balanced', '{}', 0, :now, :now, 0, 4, :now, :false)"
                ),
                {"key": "k" * 64, "now": now, "false": False},
            )
        assert await db.upgrade() == ("0001", migrate.head_revision())
        health = await db.health()
        assert health.ok and health.schema_current

        queue = JobQueue(db)
        [job] = await queue.claim("w", "node")
        assert job.media_path == "/media/old.mkv"
        assert job.details == {} and job.cancel_requested is False
        assert await queue.complete(job.id, "w")
        assert (await queue.get(job.id)).state == JobState.COMPLETED
        # Running the upgrade again is a no-op.
        assert await db.upgrade() == (migrate.head_revision(), migrate.head_revision())
    finally:
        await db.close()


async def test_migrations_create_every_modelled_column(database: Database) -> None:
    def columns(sync_conn: object) -> dict[str, set[str]]:
        inspector = inspect(sync_conn)
        return {table: {c["name"] for c in inspector.get_columns(table)} for table in Base.metadata.tables}

    async with database.engine.connect() as conn:
        found = await conn.run_sync(columns)
    for table in Base.metadata.sorted_tables:
        assert found[table.name] == {c.name for c in table.columns}, table.name


async def test_sqlite_runs_in_wal_mode_with_busy_timeout(tmp_path: object) -> None:
    from transcriptarr.db.engine import sqlite_pragmas

    db = Database(to_async_url(f"sqlite:///{tmp_path}/t.db"))
    try:
        async with db.engine.connect() as conn:
            pragmas = await sqlite_pragmas(conn)
    finally:
        await db.close()
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 30000, "synchronous": 1}


async def test_nodes_starting_together_on_a_new_database_migrate_it_once(db_url: str) -> None:
    """Several nodes (each its own engine) upgrade an empty database at the same moment: one migrates,
    the others wait for it and find the schema current (MariaDB's DDL commits as it goes, so a node that
    read the version before the lock was free would run the migrations again: "Duplicate column")."""
    nodes = [Database(to_async_url(db_url)) for _ in range(4)]
    try:
        results = await asyncio.gather(*(node.upgrade() for node in nodes))
        head = migrate.head_revision()
        assert sorted(results, key=str) == sorted([(None, head)] + [(head, head)] * 3, key=str), results
    finally:
        await asyncio.gather(*(node.close() for node in nodes))
