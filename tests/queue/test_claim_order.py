"""The claim order is defined once (db/models.py CLAIM_ORDER) and every reader follows it: the index the
migrations build, the SQLAlchemy claim, PostgreSQL's fast path and the status page's "next up"."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import Connection, inspect, text
from sqlalchemy.dialects import postgresql

from tests.queue.rows import insert_jobs, job_row
from transcriptarr.db.database import Database
from transcriptarr.db.models import CLAIM_ORDER, Job, JobState, OrderTerm, utcnow
from transcriptarr.queue.claim_order import in_claim_order, order_by_sql
from transcriptarr.queue.jobqueue import JobQueue
from transcriptarr.queue.pg_fastpath import CLAIM_SQL

QUEUED = 600  # more than the 500 newest the status page once sorted in Python
NEXT_UP = 20


def claim_index(conn: Connection) -> list[OrderTerm]:
    """ix_jobs_claim as the database holds it: its columns, each with its direction."""
    name = conn.dialect.name
    if name == "sqlite":
        rows = conn.execute(text("PRAGMA index_xinfo('ix_jobs_claim')")).mappings()
        return [OrderTerm(row["name"], bool(row["desc"])) for row in rows if row["key"]]
    if name == "postgresql":
        [index] = [i for i in inspect(conn).get_indexes("jobs") if i["name"] == "ix_jobs_claim"]
        sorting = index.get("column_sorting", {})
        return [OrderTerm(str(c), "desc" in sorting.get(str(c), ())) for c in index["column_names"]]
    rows = conn.execute(
        text(
            "SELECT column_name, collation FROM information_schema.statistics WHERE table_schema = DATABASE()"
            " AND table_name = 'jobs' AND index_name = 'ix_jobs_claim' ORDER BY seq_in_index"
        )
    )
    return [OrderTerm(column, collation == "D") for column, collation in rows]


async def test_the_migrated_claim_index_is_state_then_the_claim_order(database: Database) -> None:
    # Migrations are frozen history: a new claim order needs a new migration, and this test says so.
    found = await database.read(claim_index)
    assert found == [OrderTerm("state"), *CLAIM_ORDER], "ix_jobs_claim no longer serves CLAIM_ORDER: add a migration"


def test_the_fast_path_orders_as_the_sqlalchemy_claim() -> None:
    written = re.search(r"ORDER BY (.*)\n", CLAIM_SQL)
    assert written is not None
    assert written.group(1) == order_by_sql(postgresql.dialect()) == "jobs.priority DESC, jobs.created_at, jobs.id"


async def test_next_up_is_the_true_first_n_of_many_queued_and_the_claim_takes_them(queue: JobQueue) -> None:
    start = utcnow().replace(microsecond=0) - timedelta(days=1)
    rows = [
        # Priorities 0-4; ages a permutation with pairs of equal timestamps, so the id decides between them.
        job_row(f"m{i}", priority=(i * 7) % 5, created_at=start + timedelta(seconds=(i * 37) % QUEUED // 2))
        for i in range(QUEUED)
    ]
    # Ended jobs, however urgent and old, are not next.
    rows += [job_row(f"done{i}", priority=9, created_at=start, state=JobState.FAILED) for i in range(3)]
    ids = await insert_jobs(queue.db, rows)
    queued = list(zip(ids[:QUEUED], rows[:QUEUED], strict=True))
    # The order stated independently of CLAIM_ORDER: highest priority, then oldest, then lowest id.
    expected = [job_id for job_id, row in sorted(queued, key=lambda q: (-q[1]["priority"], q[1]["created_at"], q[0]))]
    first = expected[:NEXT_UP]
    newest_500 = set(sorted(ids[:QUEUED])[-500:])
    assert set(first) - newest_500, "the test must hold jobs the newest 500 would miss"

    assert [job.id for job in await queue.next_up(NEXT_UP)] == first
    # The claim (SQLAlchemy, or PostgreSQL's fast path) takes the same jobs, handed back in the same order.
    assert [job.id for job in await queue.claim("w/1", "node", limit=NEXT_UP)] == first
    assert [job.id for job in await queue.next_up(NEXT_UP)] == expected[NEXT_UP : 2 * NEXT_UP]


def test_in_claim_order_sorts_by_priority_then_age_then_id() -> None:
    now = utcnow()

    def job(job_id: int, priority: int, age: int) -> Job:
        return Job(id=job_id, priority=priority, created_at=now - timedelta(seconds=age))

    jobs = [job(1, 0, 10), job(2, 5, 1), job(3, 5, 9), job(4, 0, 10), job(5, 0, 30)]
    assert [j.id for j in in_claim_order(jobs)] == [3, 2, 5, 1, 4]
    assert [j.id for j in in_claim_order(reversed(jobs))] == [3, 2, 5, 1, 4]


async def test_live_for_media_finds_live_jobs_of_a_file_or_folder(queue: JobQueue) -> None:
    start = utcnow().replace(microsecond=0)
    rows = [
        job_row("show/a", priority=1, created_at=start),
        job_row("show/b", priority=1, created_at=start, state=JobState.PROCESSING),
        job_row("show/c", priority=1, created_at=start, state=JobState.COMPLETED),
        job_row("show_x/d", priority=1, created_at=start),  # `_` is no wildcard
        job_row("shower", priority=1, created_at=start),
    ]
    upload = job_row("show/e", priority=1, created_at=start, upload_path="/spool/e")
    a, b, _, _, _, _ = await insert_jobs(queue.db, [*rows, upload])

    assert [job.id for job in await queue.live_for_media("/media/show", folder=True)] == [a, b]
    assert [job.id for job in await queue.live_for_media("/media/show/", folder=True)] == [a, b]
    assert [job.id for job in await queue.live_for_media("/media/show/a.mkv")] == [a]
    assert await queue.live_for_media("/media/show/c.mkv") == []


async def test_latest_is_the_newest_job_of_the_work_whatever_its_state(queue: JobQueue) -> None:
    start = utcnow().replace(microsecond=0)
    done = job_row("x", priority=1, created_at=start, state=JobState.FAILED)
    live = job_row("x", priority=1, created_at=start)
    [_, newest] = await insert_jobs(queue.db, [done, live])
    latest = await queue.latest("test:x")
    assert latest is not None and (latest.id, latest.state) == (newest, JobState.QUEUED)
    assert await queue.latest("test:nothing") is None
