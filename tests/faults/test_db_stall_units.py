"""The parts behind tests/faults/test_db_stall.py, each on its own, fast (issue 15, part 4).

- a node's own live jobs are never requeued by lease expiry, on every backend;
- a maintenance round held up by the database longer than a renewal takes pauses the
  judging of leases for one lease (the other nodes could not renew theirs either);
- a database call made for an HTTP request answers within its bound (DatabaseStalled),
  while the write it abandoned still goes through once the database answers.

SQLite's write lock is held by another connection of the test (`BEGIN IMMEDIATE`), in a
thread, until the test lets it go.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from structlog.testing import capture_logs

from tests.polling import eventually
from transcriptarr.db.call_bound import DatabaseStalled, calls_bounded
from transcriptarr.db.database import Database
from transcriptarr.db.models import JobState, Source
from transcriptarr.queue.jobqueue import JobQueue, NewJob
from transcriptarr.queue.maintenance import keep_queue_healthy
from transcriptarr.queue.registry import WorkerRegistry
from transcriptarr.settings import to_async_url


class Clock:
    """Real time moved by `offset`: a claim made "in the past" gets a lease that ends when the test wants."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = timedelta(seconds=offset)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def movie(name: str) -> NewJob:
    return NewJob(source=Source.SCAN, media_path=f"/media/{name}.mkv", target_language="en")


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[threading.Event]:
    """Another connection holds SQLite's write lock until the yielded event is set (or the block ends)."""
    release, locked = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(30)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold, name="sqlite-lock-holder")
    holder.start()
    assert locked.wait(10)
    try:
        yield release
    finally:
        release.set()
        holder.join(30)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> Iterator[tuple[Database, Path]]:  # type: ignore[misc]
    path = tmp_path / "queue.db"
    db = Database(to_async_url(f"sqlite:///{path}"))
    await db.upgrade()
    yield db, path
    await db.close()


async def test_a_nodes_own_live_jobs_are_not_taken_for_dead_ones(database: Database) -> None:
    clock = Clock()
    queue = JobQueue(database, lease_seconds=5, max_attempts=1, clock=clock)
    await queue.enqueue(movie("mine"))
    await queue.enqueue(movie("theirs"))
    [mine] = await queue.claim("me/cpu/0", "me")
    [theirs] = await queue.claim("other/cpu/0", "other")
    clock.offset = timedelta(seconds=60)  # both leases ran out while the database stalled

    assert await queue.recover_expired(alive={"me/cpu/0"}) == 1
    assert (await queue.get(theirs.id)).state == JobState.FAILED  # max_attempts=1: a counted attempt ends it
    kept = await queue.get(mine.id)
    assert (kept.state, kept.worker, kept.attempts) == (JobState.PROCESSING, "me/cpu/0", 1)
    assert (await queue.report(mine.id, "me/cpu/0", progress=90)).owned  # its next heartbeat renews the lease
    assert await queue.complete(mine.id, "me/cpu/0", result_path="/media/mine.en.srt")
    done = await queue.get(mine.id)
    assert (done.state, done.attempts) == (JobState.COMPLETED, 1)


async def test_a_round_held_up_by_the_database_pauses_the_judging_of_leases(
    sqlite_db: tuple[Database, Path],
) -> None:
    db, path = sqlite_db
    lease = 3.0  # maintenance runs every second
    queue = JobQueue(db, lease_seconds=lease, max_attempts=3)
    # Another node queued and claimed it; its lease ends half a second into the stall below.
    other_node = JobQueue(db, lease_seconds=lease, clock=Clock(offset=0.5 - lease))
    await other_node.enqueue(movie("theirs"))
    [theirs] = await other_node.claim("other/cpu/0", "other")
    stop = asyncio.Event()
    with capture_logs() as logs:
        with write_lock(path) as release:
            housekeeping = asyncio.create_task(
                keep_queue_healthy(
                    queue, WorkerRegistry(db), stop, job_retention=timedelta(days=1), result_retention=timedelta(days=1)
                )
            )
            await eventually(lambda: db.oldest_write_seconds() > 2.0, "the round's write to wait 2 s", 10)
            release.set()
            released_at = datetime.now(UTC)

        async def requeued() -> bool:
            return (await queue.get(theirs.id)).state == JobState.QUEUED

        try:
            await eventually(requeued, "the other node's job to be requeued after the pause", 15)
        finally:
            stop.set()
            await housekeeping
    events = [entry["event"] for entry in logs]
    assert "lease_judging_paused" in events and "jobs_recovered" in events
    taken_back = (await queue.get(theirs.id)).updated_at
    # Without the pause, the round after the stall (1 s later) would have taken it: its lease had run out.
    assert taken_back - released_at >= timedelta(seconds=lease - 0.5), taken_back - released_at


async def test_a_request_gets_its_answer_within_the_bound_and_the_write_still_goes_through(
    sqlite_db: tuple[Database, Path],
) -> None:
    db, path = sqlite_db
    await db.write(lambda conn: conn.execute(text("CREATE TABLE notes (note TEXT)")))
    with write_lock(path) as release:
        started = time.monotonic()
        with calls_bounded(0.5), pytest.raises(DatabaseStalled, match=r"did not answer within 0\.5 s"):
            await db.write(lambda conn: conn.execute(text("INSERT INTO notes VALUES ('asked during the stall')")))
        assert time.monotonic() - started < 3.0
        assert db.oldest_write_seconds() > 0  # /health keeps seeing the stall
        # Reads are not held up by SQLite's write lock (WAL): a bounded read answers.
        with calls_bounded(0.5):
            assert await db.read(lambda conn: conn.execute(text("SELECT count(*) FROM notes")).scalar_one()) == 0
        release.set()

    async def written() -> bool:
        return await db.read(lambda conn: conn.execute(text("SELECT count(*) FROM notes")).scalar_one()) == 1

    await eventually(written, "the abandoned write to go through once the lock was let go", 10)
    # Without a bound (the service's own work), a write waits the lock out.
    with write_lock(path) as release:
        waiting = asyncio.create_task(db.write(lambda conn: conn.execute(text("INSERT INTO notes VALUES ('x')"))))
        await eventually(lambda: db.oldest_write_seconds() > 0.5, "the write to wait", 10)
        assert not waiting.done()
        release.set()
    await waiting
    assert db.oldest_write_seconds() == 0.0
