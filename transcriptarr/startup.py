"""Start-up factories: the database and what is built on it, made one way for every entry point.

The service (service.py), the command line (cli.py, library_commands.py) and the demo all begin the same:
open the configured database, make sure it answers, bring its schema up to date, build the queue and
the registries from the settings.

    async with open_storage(settings) as storage:    # answering, at the current schema; closed on exit
        await storage.queue.enqueue(...)

A database that does not answer raises StartupError, whose message says why and what to check.
Nothing here loads the engine (faster-whisper) or the HTTP layer: `transcriptarr jobs` stays quick.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from transcriptarr.db.database import Database, Health
from transcriptarr.db.problems import unreachable_message
from transcriptarr.queue.jobqueue import JobQueue
from transcriptarr.queue.registry import WorkerRegistry, stale_after
from transcriptarr.settings import Settings
from transcriptarr.subtitles.registry import SubtitleRegistry


class StartupError(Exception):
    """The service or a command cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class SchemaUpgrade:
    before: str | None  # None: an empty database
    after: str | None


@dataclass(frozen=True)
class Storage:
    """The database and the parts that keep their state in it."""

    db: Database
    queue: JobQueue
    workers: WorkerRegistry
    subtitles: SubtitleRegistry
    upgrade: SchemaUpgrade | None  # the upgrade this start made; None: the schema was current


@contextlib.asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """The database DATABASE_URL names, closed on exit; nothing checked (`transcriptarr db check` reports)."""
    db = Database(settings.async_database_url)
    try:
        yield db
    finally:
        await db.close()


async def reachable(db: Database) -> Health:
    """Its health when it answers; StartupError saying why and what to check when it does not."""
    health = await db.health()
    if not health.ok:
        await db.settle_failed_connects()
        raise StartupError(unreachable_message(db, health.error))
    return health


async def ready(db: Database) -> SchemaUpgrade | None:
    """Answering, and at the current schema: upgraded when behind (what changed), else None."""
    health = await reachable(db)
    if health.schema_current:
        return None
    before, after = await db.upgrade()
    return SchemaUpgrade(before, after)


def job_queue(db: Database, settings: Settings) -> JobQueue:
    return JobQueue(
        db,
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.max_retries + 1,
        backoff_seconds=settings.retry_backoff_seconds,
    )


def worker_registry(db: Database, settings: Settings) -> WorkerRegistry:
    return WorkerRegistry(db, stale_after=stale_after(settings.lease_seconds))


@contextlib.asynccontextmanager
async def open_storage(settings: Settings) -> AsyncIterator[Storage]:
    """The database ready for work, with the queue and the registries on it; closed on exit."""
    async with open_database(settings) as db:
        upgrade = await ready(db)
        yield Storage(db, job_queue(db, settings), worker_registry(db, settings), SubtitleRegistry(db), upgrade)
