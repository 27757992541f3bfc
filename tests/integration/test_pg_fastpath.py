"""PostgreSQL's fast path for claim and complete (transcriptarr/queue/pg_fastpath.py)
behaves as the SQLAlchemy path it short-cuts: the same jobs, the same values written,
the same errors, the same one-claimer-per-job guarantee, and it survives lost
connections. Plus the single-statement heartbeat, on every backend.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from tests.conftest import new_server_database
from tests.servers import RunningServer
from transcriptarr.db.database import Database
from transcriptarr.db.models import Job, JobState, Source, Stage
from transcriptarr.queue.jobqueue import COLUMNS, JOBS, JobQueue, NewJob
from transcriptarr.settings import to_async_url

FIELDS = tuple(column.name for column in COLUMNS)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now


@pytest.fixture
async def pg(postgresql_server: RunningServer) -> AsyncIterator[Database]:
    db = Database(to_async_url(new_server_database(postgresql_server)), pool_size=4)
    await db.upgrade()
    yield db
    await db.close()


def fast(db: Database, clock: Clock | None = None) -> JobQueue:
    queue = JobQueue(db, lease_seconds=30, clock=clock or Clock())
    assert queue._fast is not None
    return queue


def sqlalchemy_only(db: Database, clock: Clock | None = None) -> JobQueue:
    """The same queue with the fast path switched off: what SQLite and MariaDB run."""
    queue = JobQueue(db, lease_seconds=30, clock=clock or Clock())
    queue._fast = None
    return queue


def fields(job: Job) -> dict[str, Any]:
    return {name: getattr(job, name) for name in FIELDS}


def twin(n: int, **kwargs: Any) -> NewJob:
    """Jobs that differ only in their path (so in id and keys)."""
    return NewJob(
        source=Source.BAZARR,
        media_path=f"/media/twin {n}.mkv",
        media_size=1 << 40,
        media_mtime=1700000000.123456,
        upload_path="/spool/ü.wav",
        source_language="ja",
        target_language="en",
        priority=7,
        quality="best",
        media_duration=5400.5,
        options={"beam": 5, "words": ["a", "é"], "nested": {"x": None, "y": 1.5}},
        details={"probe": {"streams": [1, 2]}, "note": "💡"},
        **kwargs,
    )


DIFFER_BY_JOB = {"id", "media_path", "content_key", "active_key"}


async def test_claimed_jobs_are_the_rows_sqlalchemy_reads(pg: Database) -> None:
    queue, reference = fast(pg), sqlalchemy_only(pg)
    for n in range(3):
        await queue.enqueue(twin(n))
    claimed = await queue.claim("w/1", "node-a", limit=3)
    assert len(claimed) == 3
    for job in claimed:
        assert fields(job) == fields(await reference.get(job.id))
        assert job.created_at.tzinfo is UTC and job.options["nested"] == {"x": None, "y": 1.5}
        job.progress = 12.5  # still an ordinary mapped object
        assert job.progress == 12.5


async def test_both_paths_claim_and_complete_alike(pg: Database) -> None:
    """Twin jobs, one through each path, at the same clock: equal in every field but their identity."""
    outcomes = []
    for n, make in enumerate((fast, sqlalchemy_only)):
        clock = Clock()
        queue = make(pg, clock)
        await queue.enqueue(twin(n))
        [claimed] = await queue.claim("w/1", "node-a")
        done = await queue.complete(
            claimed.id,
            "w/1",
            result_path="/media/twin.en.srt",
            result_text="1\n00:00:01,000 --> 00:00:02,000\nこんにちは\n",
            processing_seconds=12.25,
            language_probability=0.97,
            details={"segments": 3, "words": None},
        )
        outcomes.append((fields(claimed), done, fields(await queue.get(claimed.id))))
        await pg.write(lambda conn: conn.execute(JOBS.delete()))
    (fast_claimed, fast_done, fast_row), (sa_claimed, sa_done, sa_row) = outcomes
    assert fast_done and sa_done
    for key in DIFFER_BY_JOB:
        del fast_claimed[key], sa_claimed[key], fast_row[key], sa_row[key]
    assert fast_claimed == sa_claimed
    assert fast_row == sa_row
    assert fast_row["state"] == JobState.COMPLETED and fast_row["details"] == {"segments": 3, "words": None}


async def test_complete_refuses_a_worker_that_lost_the_job(pg: Database) -> None:
    queue = fast(pg)
    job = (await queue.enqueue(twin(0))).job
    assert not await queue.complete(job.id, "w/1")  # queued, not claimed
    [claimed] = await queue.claim("w/1", "node-a")
    assert not await queue.complete(claimed.id, "w/2")
    assert await queue.complete(claimed.id, "w/1")
    assert not await queue.complete(claimed.id, "w/1")  # already completed


async def test_fast_and_sqlalchemy_claimers_together_never_share_a_job(pg: Database) -> None:
    seed = sqlalchemy_only(pg)
    for i in range(300):
        await seed.enqueue(NewJob(source=Source.SCAN, media_path=f"/media/m{i}.mkv", priority=i % 3))
    seen: Counter[int] = Counter()

    async def claimer(queue: JobQueue, name: str) -> None:
        while jobs := await queue.claim(name, "node", limit=2):
            for job in jobs:
                seen[job.id] += 1
                assert await queue.complete(job.id, name)

    await asyncio.gather(
        *(claimer(fast(pg), f"fast{i}") for i in range(4)),
        *(claimer(sqlalchemy_only(pg), f"sa{i}") for i in range(4)),
    )
    assert len(seen) == 300 and set(seen.values()) == {1}
    rows = await pg.read(
        lambda conn: conn.execute(select(JOBS.c.state, JOBS.c.attempts, func.count()).group_by("state", "attempts"))
    )
    assert [tuple(row) for row in rows] == [(JobState.COMPLETED, 1, 300)]


async def test_errors_are_sqlalchemys(pg: Database) -> None:
    errors = []
    for n, make in enumerate((fast, sqlalchemy_only)):
        queue = make(pg)
        await queue.enqueue(twin(n))
        [claimed] = await queue.claim("w/1", "node-a")
        with pytest.raises(DBAPIError) as caught:
            await queue.complete(claimed.id, "w/1", source_language="far too long for sixteen characters")
        errors.append((type(caught.value), type(caught.value.orig), caught.value.connection_invalidated))
        assert await queue.complete(claimed.id, "w/1")  # the connection is still good
    assert errors[0] == errors[1]
    with pytest.raises(Exception, match="not_a_column"):  # unknown names: as SQLAlchemy says
        await fast(pg).complete(1, "w/1", not_a_column=1)


async def test_lost_connections_are_replaced(pg: Database) -> None:
    queue = fast(pg)
    for i in range(3):
        await queue.enqueue(twin(i))
    [first] = await queue.claim("w/1", "node-a")
    assert await queue.complete(first.id, "w/1")

    async with pg.engine.connect() as conn:  # as a server restart would
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    await asyncio.sleep(0.5)  # the closed sockets are noticed

    [second] = await queue.claim("w/1", "node-a")
    assert await queue.complete(second.id, "w/1")


async def test_queues_on_one_database_share_its_fast_path_and_another_database_has_its_own(
    pg: Database, postgresql_server: RunningServer
) -> None:
    first, second = fast(pg), fast(pg)
    assert first._fast is second._fast  # one asyncpg pool per database, however many queues
    other = Database(to_async_url(new_server_database(postgresql_server)), pool_size=2)
    try:
        assert fast(other)._fast is not first._fast
    finally:
        await other.close()


async def test_closing_the_database_closes_the_fast_paths_connections(
    postgresql_server: RunningServer,
) -> None:
    url = to_async_url(new_server_database(postgresql_server))
    db = Database(url, pool_size=3)
    await db.upgrade()
    queue = fast(db)
    await queue.enqueue(twin(0))
    await asyncio.gather(*(queue.claim(f"w/{i}", "node") for i in range(3)))
    await db.close()

    observer = Database(url)
    try:
        count = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        for _ in range(50):
            if await observer.read(lambda conn: conn.execute(text(count)).scalar_one()) == 0:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("connections left open after Database.close()")
    finally:
        await observer.close()


async def test_heartbeat_reports_ownership_and_cancel_requests(queue: JobQueue) -> None:
    """Every backend (a single UPDATE ... RETURNING, except on MariaDB)."""
    job = (await queue.enqueue(NewJob(source=Source.SCAN, media_path="/media/a.mkv"))).job
    assert not (await queue.report(job.id, "w", progress=5)).owned  # not claimed yet
    [claimed] = await queue.claim("w", "node")
    status = await queue.report(claimed.id, "w", progress=150, stage=Stage.TRANSCRIBING, source_language="de")
    assert status.owned and not status.cancel_requested
    assert not (await queue.report(claimed.id, "other", progress=5)).owned
    assert await queue.cancel(claimed.id) == JobState.PROCESSING
    status = await queue.report(claimed.id, "w", progress=50)
    assert status.owned and status.cancel_requested
    stored = await queue.get(claimed.id)
    assert (stored.progress, stored.stage, stored.source_language) == (50, Stage.TRANSCRIBING, "de")
