"""The queue's contract, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from transcriptarr.db.database import Database
from transcriptarr.db.models import JobState, Source, Task
from transcriptarr.queue.jobqueue import InvalidTransition, JobNotFound, JobQueue, NewJob
from transcriptarr.queue.keys import upload_key
from transcriptarr.queue.stats import queue_stats


class Clock:
    """A clock the test moves by hand, so lease expiry needs no waiting."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def movie(name: str, **kwargs: object) -> NewJob:
    return NewJob(source=Source.SCAN, media_path=f"/media/{name}.mkv", target_language="en", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed_queue(database: Database, clock: Clock) -> JobQueue:
    return JobQueue(database, lease_seconds=30, max_attempts=3, backoff_seconds=10, clock=clock)


async def test_duplicate_enqueue_attaches_to_the_live_job(queue: JobQueue) -> None:
    first = await queue.enqueue(movie("a"))
    again = await queue.enqueue(movie("a"))
    other_language = await queue.enqueue(NewJob(source=Source.SCAN, media_path="/media/a.mkv", target_language="de"))
    assert first.created and not again.created
    assert again.job.id == first.job.id
    assert f"already queued as job {first.job.id}" in again.reason
    assert other_language.created

    [claimed] = await queue.claim("w1", "node")
    while_processing = await queue.enqueue(movie("a"))
    assert not while_processing.created and while_processing.job.id == claimed.id


async def test_completed_unchanged_file_is_not_queued_again(queue: JobQueue) -> None:
    job = (await queue.enqueue(movie("a", media_size=100, media_mtime=5.0))).job
    [claimed] = await queue.claim("w1", "node")
    assert await queue.complete(claimed.id, "w1", result_path="/media/a.en.srt")

    unchanged = await queue.enqueue(movie("a", media_size=100, media_mtime=5.0))
    assert not unchanged.created and unchanged.job.id == job.id
    assert "file unchanged" in unchanged.reason

    replaced = await queue.enqueue(movie("a", media_size=120, media_mtime=9.0))
    assert replaced.created and replaced.job.id != job.id


async def test_repeated_upload_attaches_by_content_key(queue: JobQueue) -> None:
    key = upload_key("ab" * 32, "transcribe", "en")
    first = await queue.enqueue(NewJob(source=Source.BAZARR, upload_path="/spool/1", content_key=key))
    second = await queue.enqueue(NewJob(source=Source.BAZARR, upload_path="/spool/2", content_key=key))
    assert second.job.id == first.job.id and not second.created


async def test_claim_takes_highest_priority_then_oldest(queue: JobQueue) -> None:
    old_scan = (await queue.enqueue(movie("old-scan"))).job
    new_scan = (await queue.enqueue(movie("new-scan"))).job
    bazarr = (await queue.enqueue(NewJob(source=Source.BAZARR, content_key="k" * 64))).job
    watched = (await queue.enqueue(NewJob(source=Source.WATCH, media_path="/media/w.mkv"))).job

    order = [job.id for _ in range(4) for job in await queue.claim("w", "node")]
    assert order == [bazarr.id, watched.id, old_scan.id, new_scan.id]
    assert await queue.claim("w", "node") == []


async def test_reprioritised_job_is_claimed_first(queue: JobQueue) -> None:
    await queue.enqueue(movie("a"))
    b = (await queue.enqueue(movie("b"))).job
    updated = await queue.set_priority(b.id, 999)
    assert updated.priority == 999
    [claimed] = await queue.claim("w", "node")
    assert claimed.id == b.id
    with pytest.raises(JobNotFound):
        await queue.set_priority(123456, 1)


async def test_promote_raises_a_queued_job_and_merges_details_but_never_lowers_or_touches_running_jobs(
    queue: JobQueue,
) -> None:
    job = (await queue.enqueue(movie("a", priority=150, details={"reason": "scan"}))).job
    promoted = await queue.promote(job.id, 300, {"webhook": {"server": "plex", "item_id": "7"}})
    assert promoted.priority == 300
    assert promoted.details == {"reason": "scan", "webhook": {"server": "plex", "item_id": "7"}}
    assert (await queue.promote(job.id, 100, {})).priority == 300

    [claimed] = await queue.claim("w", "node")
    running = await queue.promote(claimed.id, 400, {"webhook": {"server": "emby"}})
    assert running.priority == 300 and running.details["webhook"]["server"] == "plex"


async def test_concurrent_claimers_never_share_a_job(queue: JobQueue) -> None:
    for i in range(150):
        await queue.enqueue(movie(f"m{i}"))
    seen: list[int] = []

    async def claimer(name: str) -> None:
        while jobs := await queue.claim(name, "node"):
            seen.extend(job.id for job in jobs)
            assert await queue.complete(jobs[0].id, name)

    await asyncio.gather(*(claimer(f"w{i}") for i in range(8)))
    assert len(seen) == 150 and len(set(seen)) == 150
    stats = await queue_stats(queue.db, datetime.now(UTC), workers=1)
    assert stats.counts["completed"] == 150 and stats.counts["queued"] == 0


async def test_expired_lease_requeues_and_counts_the_attempt(timed_queue: JobQueue, clock: Clock) -> None:
    job = (await timed_queue.enqueue(movie("a"))).job
    [claimed] = await timed_queue.claim("dead-worker", "node")
    assert claimed.attempts == 1

    clock.advance(10)
    assert await timed_queue.recover_expired() == 0  # lease still valid
    clock.advance(25)
    assert await timed_queue.recover_expired() == 1
    requeued = await timed_queue.get(job.id)
    assert requeued.state == JobState.QUEUED and requeued.worker is None
    assert "stopped responding" in (requeued.error or "")

    # The dead worker's late result is refused; the new owner's is accepted.
    [again] = await timed_queue.claim("live-worker", "node")
    assert again.attempts == 2
    assert not await timed_queue.complete(job.id, "dead-worker")
    assert await timed_queue.complete(job.id, "live-worker")


async def test_heartbeat_keeps_the_lease(timed_queue: JobQueue, clock: Clock) -> None:
    await timed_queue.enqueue(movie("a"))
    [job] = await timed_queue.claim("w", "node")
    for _ in range(5):
        clock.advance(20)
        status = await timed_queue.report(job.id, "w", progress=50)
        assert status.owned and not status.cancel_requested
    assert await timed_queue.recover_expired() == 0
    assert (await timed_queue.get(job.id)).progress == 50


async def test_job_fails_after_too_many_lost_workers(timed_queue: JobQueue, clock: Clock) -> None:
    job = (await timed_queue.enqueue(movie("a"))).job
    for _ in range(3):
        [claimed] = await timed_queue.claim("w", "node")
        assert claimed.id == job.id
        clock.advance(31)
        await timed_queue.recover_expired()
    failed = await timed_queue.get(job.id)
    assert failed.state == JobState.FAILED
    assert "gave up after 3 attempts" in (failed.error or "")
    assert failed.active_key is None


async def test_transient_failure_retries_with_exponential_backoff(timed_queue: JobQueue, clock: Clock) -> None:
    job = (await timed_queue.enqueue(movie("a"))).job
    [claimed] = await timed_queue.claim("w", "node")
    assert await timed_queue.fail(claimed.id, "w", "ffmpeg crashed", permanent=False) == JobState.QUEUED
    assert await timed_queue.claim("w", "node") == []  # backing off 10 s
    clock.advance(11)
    [second] = await timed_queue.claim("w", "node")
    assert await timed_queue.fail(second.id, "w", "ffmpeg crashed", permanent=False) == JobState.QUEUED
    clock.advance(11)
    assert await timed_queue.claim("w", "node") == []  # now 20 s
    clock.advance(10)
    [third] = await timed_queue.claim("w", "node")
    assert await timed_queue.fail(third.id, "w", "ffmpeg crashed", permanent=False) == JobState.FAILED
    failed = await timed_queue.get(job.id)
    assert failed.error == "ffmpeg crashed" and not failed.error_permanent


async def test_permanent_failure_fails_at_once(queue: JobQueue) -> None:
    await queue.enqueue(movie("a"))
    [job] = await queue.claim("w", "node")
    state = await queue.fail(job.id, "w", "no audio stream in /media/a.mkv", permanent=True)
    assert state == JobState.FAILED
    failed = await queue.get(job.id)
    assert failed.error_permanent and failed.attempts == 1
    assert await queue.fail(job.id, "w", "again", permanent=True) is None  # no longer owned


async def test_cancel_queued_at_once_and_processing_at_next_checkpoint(queue: JobQueue) -> None:
    queued = (await queue.enqueue(movie("a"))).job
    assert await queue.cancel(queued.id, "file deleted") == JobState.CANCELLED
    assert (await queue.get(queued.id)).error == "file deleted"

    await queue.enqueue(movie("b"))
    [running] = await queue.claim("w", "node")
    assert await queue.cancel(running.id) == JobState.PROCESSING
    status = await queue.report(running.id, "w", progress=10)
    assert status.owned and status.cancel_requested
    assert await queue.acknowledge_cancel(running.id, "w")
    assert (await queue.get(running.id)).state == JobState.CANCELLED

    with pytest.raises(InvalidTransition, match="already cancelled"):
        await queue.cancel(running.id)
    with pytest.raises(JobNotFound):
        await queue.cancel(987654)


async def test_retry_failed_job_and_refuse_when_duplicate_is_live(queue: JobQueue) -> None:
    job = (await queue.enqueue(movie("a"))).job
    [claimed] = await queue.claim("w", "node")
    await queue.fail(claimed.id, "w", "broken", permanent=True)
    retried = await queue.retry(job.id)
    assert retried.state == JobState.QUEUED and retried.attempts == 0 and retried.error is None

    with pytest.raises(InvalidTransition, match="only failed or cancelled"):
        await queue.retry(job.id)

    [claimed] = await queue.claim("w", "node")
    await queue.fail(claimed.id, "w", "broken", permanent=True)
    newer = await queue.enqueue(movie("a"))
    assert newer.created
    with pytest.raises(InvalidTransition, match=f"already queued as job {newer.job.id}"):
        await queue.retry(job.id)


async def test_graceful_release_does_not_count_an_attempt(queue: JobQueue) -> None:
    await queue.enqueue(movie("a"))
    [job] = await queue.claim("w", "node")
    assert await queue.release(job.id, "w")
    back = await queue.get(job.id)
    assert back.state == JobState.QUEUED and back.attempts == 0


async def test_restart_recovers_this_nodes_jobs_only(queue: JobQueue) -> None:
    await queue.enqueue(movie("a"))
    await queue.enqueue(movie("b"))
    [mine] = await queue.claim("w1", "home")
    [theirs] = await queue.claim("w1", "gpu-box")
    assert await queue.recover_node("home") == 1
    assert (await queue.get(mine.id)).state == JobState.QUEUED
    assert (await queue.get(theirs.id)).state == JobState.PROCESSING


async def test_statistics_and_eta_from_measured_speed(timed_queue: JobQueue, clock: Clock) -> None:
    for name in ("a", "b"):
        await timed_queue.enqueue(movie(name, media_duration=600.0))
    [done] = await timed_queue.claim("w", "node")
    # 600 s of media in 60 s: 10x real time.
    await timed_queue.complete(done.id, "w", processing_seconds=60.0)
    await timed_queue.enqueue(movie("c", media_duration=1200.0))
    stats = await queue_stats(timed_queue.db, clock(), workers=2)
    assert stats.counts["queued"] == 2 and stats.counts["completed"] == 1
    assert stats.completed_last_hour == 1
    assert stats.speed == pytest.approx(10.0)
    assert stats.remaining_media_seconds == pytest.approx(1800.0)
    assert stats.eta_seconds == pytest.approx(90.0)  # 1800 s / (10x * 2 workers)


async def test_cleanup_keeps_recent_jobs_and_bazarr_results_longer(timed_queue: JobQueue, clock: Clock) -> None:
    old = (await timed_queue.enqueue(movie("old"))).job
    bazarr = (await timed_queue.enqueue(NewJob(source=Source.BAZARR, content_key="b" * 64, task=Task.TRANSCRIBE))).job
    for _ in range(2):
        [job] = await timed_queue.claim("w", "node")
        await timed_queue.complete(job.id, "w", result_text="1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    live = (await timed_queue.enqueue(movie("live"))).job
    clock.advance(30 * 3600)
    removed = await timed_queue.cleanup(job_retention=timedelta(hours=24), result_retention=timedelta(hours=48))
    assert removed == 1
    with pytest.raises(JobNotFound):
        await timed_queue.get(old.id)
    assert (await timed_queue.find_result("b" * 64)) is not None
    assert (await timed_queue.get(bazarr.id)).state == JobState.COMPLETED
    assert (await timed_queue.get(live.id)).state == JobState.QUEUED
