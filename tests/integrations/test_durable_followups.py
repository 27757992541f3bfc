"""Durable follow-ups: stored with the job's result, done at least once, across restarts, by one runner at a time.

Real databases (SQLite, PostgreSQL, MariaDB through the `db_url` fixture), real HTTP receivers on 127.0.0.1,
the real service parts (`build()`) for the restart; a job that fails for good (a file that is not media)
gives a notification without needing a model.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import structlog
from aiohttp import web
from alembic import command
from sqlalchemy import Connection, inspect
from sqlalchemy.exc import StatementError

from tests.acceptance.engine_harness import engine_settings
from tests.api.live import LiveService
from tests.integrations.fake_bazarr import FakeBazarr, lang
from tests.polling import eventually
from transcriptarr.db import migrate
from transcriptarr.db.database import Database
from transcriptarr.db.models import FollowUpState, Job, JobState, Source
from transcriptarr.integrations.bazarr_followup import BazarrNotify
from transcriptarr.integrations.followups import Attempt, FollowUps
from transcriptarr.integrations.notify import Notify
from transcriptarr.queue.followups import FollowUpStore, NewFollowUp
from transcriptarr.queue.jobqueue import JobQueue, NewJob
from transcriptarr.service import Components, build
from transcriptarr.settings import to_async_url

Answer = Callable[[int], Awaitable[web.StreamResponse]]  # the answer to the n-th request (1, 2, ...)


@dataclass
class Receiver:
    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # Idempotency-Key headers
    times: list[float] = field(default_factory=list)  # monotonic arrival times
    busy: dict[str, int] = field(default_factory=dict)  # event id -> requests for it in progress now
    overlaps: int = 0  # requests that arrived while another for the same event was in progress


async def ok(_: int) -> web.StreamResponse:
    return web.Response(status=204)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def receiver(answer: Answer = ok, *, port: int = 0) -> AsyncIterator[Receiver]:
    """An HTTP server on 127.0.0.1 that records each POST to /hook and answers with `answer`."""
    got = Receiver()

    async def hook(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        event = str(body.get("event_id"))
        got.overlaps += 1 if got.busy.get(event) else 0
        got.busy[event] = got.busy.get(event, 0) + 1
        got.bodies.append(body)
        got.keys.append(request.headers.get("Idempotency-Key", ""))
        got.times.append(time.monotonic())
        try:
            return await answer(len(got.bodies))
        finally:
            got.busy[event] -= 1

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    got.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield got
    finally:
        await runner.cleanup()


def broken_file(folder: Path, name: str = "Broken.mkv") -> Path:
    """A file that looks like media and is not: its job fails for good at once (no model needed)."""
    path = folder / name
    path.write_text("this is not a video")
    return path


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [line for line in logs if line["event"] == name]


async def finished_job(queue: JobQueue, name: str = "/media/film.mkv") -> Job:
    """A job claimed by a worker, ready to be completed or failed."""
    await queue.enqueue(NewJob(source=Source.MANUAL, media_path=name))
    [job] = await queue.claim("w", "node")
    return job


def runner_for(db: Database, notify_url: str, *, node: str = "node-a", **options: Any) -> FollowUps:
    return FollowUps(
        [Notify(notify_url, node=node, attempts=options.pop("attempts", 5))], FollowUpStore(db), node=node, **options
    )


async def store_notification(runner: FollowUps, queue: JobQueue) -> Job:
    """A job completed with its notification stored, as a worker would leave it."""
    job = await finished_job(queue, f"/media/{uuid.uuid4().hex}.mkv")
    assert await queue.complete(job.id, "w", followups=runner.plan)
    return await queue.get(job.id)


async def settled(runner: FollowUps) -> bool:
    return runner.pending == 0 and await runner.store.count_pending() == 0


# --- stored with the result ----------------------------------------------------------------------------------


async def test_followups_are_stored_with_the_result_in_the_same_transaction(queue: JobQueue) -> None:
    store = FollowUpStore(queue.db)

    def plan(job: Job) -> list[NewFollowUp]:
        return [NewFollowUp("notify", "http://x/hook", {"state": job.state, "finished": str(job.finished_at)})]

    completed = await finished_job(queue, "/media/a.mkv")
    assert await queue.complete(completed.id, "w", result_path="/media/a.en.srt", followups=plan)
    [stored] = await store.for_job(completed.id)
    assert (stored.kind, stored.state, stored.attempts) == ("notify", FollowUpState.PENDING, 0)
    done = await queue.get(completed.id)
    # The planner saw the job as stored with its result.
    assert stored.payload == {"state": "completed", "finished": str(done.finished_at)}

    # A worker that lost the job stores neither the result nor follow-ups.
    lost = await finished_job(queue, "/media/b.mkv")
    assert not await queue.complete(lost.id, "another-worker", followups=plan)
    assert await store.for_job(lost.id) == []

    # A failed attempt that will be retried has none; a job that failed for good has its own.
    failing = await finished_job(queue, "/media/c.mkv")
    assert await queue.fail(failing.id, "w", "temporary", permanent=False, followups=plan) == JobState.QUEUED
    assert await store.for_job(failing.id) == []
    broken = await finished_job(queue, "/media/e.mkv")  # (c waits out its backoff)
    assert await queue.fail(broken.id, "w", "broken", permanent=True, followups=plan) == JobState.FAILED
    [failed] = await store.for_job(broken.id)
    assert failed.payload["state"] == "failed"

    # Same transaction: follow-ups that cannot be stored (not JSON) leave the job as it was, still processing.
    unstorable = await finished_job(queue, "/media/d.mkv")
    with pytest.raises(StatementError):
        await queue.complete(unstorable.id, "w", followups=lambda job: [NewFollowUp("notify", "x", {"bad": {1}})])
    assert (await queue.get(unstorable.id)).state == JobState.PROCESSING
    assert await store.for_job(unstorable.id) == []

    # A planner with a bug costs its follow-ups, never the job's result.
    def buggy(job: Job) -> list[NewFollowUp]:
        raise KeyError("bazarr")

    with structlog.testing.capture_logs() as logs:
        assert await queue.complete(unstorable.id, "w", followups=buggy)
    assert (await queue.get(unstorable.id)).state == JobState.COMPLETED
    [line] = events(logs, "followups_not_planned")
    assert line["job_id"] == unstorable.id and "KeyError" in line["error"]


# --- across a restart ----------------------------------------------------------------------------------------


async def test_a_notification_the_receiver_missed_is_sent_after_a_restart(db_url: str, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there yet: the receiver is down
    settings = engine_settings(tmp_path, database_url=db_url, notify_url=f"http://127.0.0.1:{port}/hook")
    async with build(settings) as parts:
        parts.followups.first_delay = 5.0  # the stored next try: due a little after the restart below
        await parts.queue.enqueue(NewJob(source=Source.MANUAL, media_path=str(broken_file(tmp_path))))
        await parts.pool.run(asyncio.Event(), once=True)
        [job] = await parts.queue.list_jobs()

        async def tried_once() -> bool:
            return any(followup.last_error for followup in await parts.followups.store.for_job(job.id))

        await eventually(tried_once, "a failed try, stored", timeout=30)
        [stored] = await parts.followups.store.for_job(job.id)
    # The service stopped with the notification pending, the error kept for people to see.
    assert job.state == JobState.FAILED
    assert stored.state == FollowUpState.PENDING and stored.attempts == 1
    assert stored.last_error is not None and f"127.0.0.1:{port}" in stored.last_error

    async with receiver(port=port) as hook, build(settings) as parts:
        with structlog.testing.capture_logs() as logs:
            assert await parts.followups.start() == 1  # what the service does at start-up
            await eventually(lambda: settled(parts.followups), "the notification after the restart", timeout=30)
        [after] = await parts.followups.store.for_job(job.id)
    [body] = hook.bodies
    assert body["event"] == "job.failed" and body["job_id"] == job.id and body["file"] == job.media_path
    assert body["event_id"] == stored.payload["data"]["body"]["event_id"] == hook.keys[0]
    assert after.state == FollowUpState.DONE and after.attempts == 2
    [done] = events(logs, "followup_done")
    assert (done["action"], done["attempt"], done["job_id"]) == ("notify", 2, job.id)


async def test_a_new_process_sends_what_the_stopped_one_could_not(tmp_path: Path) -> None:
    """The real service, twice: `transcriptarr run` stopped (SIGTERM) while the receiver is down, then started again."""
    url = f"sqlite:///{tmp_path / 'service.db'}"
    db = Database(to_async_url(url))
    await db.upgrade()
    queue, store = JobQueue(db), FollowUpStore(db)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": str(tmp_path / "data"),
        "MODEL_DIR": str(tmp_path / "models"),
        "WHISPER_MODEL": "bundled:tiny.en",
        "WHISPER_DEVICE": "cpu",
        "LOG_FORMAT": "json",
        "NODE_NAME": "restart-test",
        "HTTP_ENABLED": "false",
        "NOTIFY_URL": f"http://127.0.0.1:{port}/hook",
    }

    async def run_until(done: Callable[[], Awaitable[bool]], what: str) -> str:
        log_path = tmp_path / f"service-{uuid.uuid4().hex}.log"
        with log_path.open("ab") as log_file:
            service = subprocess.Popen(
                [sys.executable, "-m", "transcriptarr", "run"], env=env, cwd=tmp_path, stdout=log_file, stderr=log_file
            )
        try:
            await eventually(done, what, timeout=90)
            service.send_signal(signal.SIGTERM)
            assert service.wait(timeout=60) == 0, log_path.read_text()[-3000:]
        finally:
            if service.poll() is None:
                service.kill()
                service.wait()
        return log_path.read_text()

    try:
        job = (await queue.enqueue(NewJob(source=Source.MANUAL, media_path=str(broken_file(tmp_path))))).job

        async def tried() -> bool:
            return any(followup.last_error for followup in await store.for_job(job.id))

        await run_until(tried, "a try while the receiver is down")
        [pending] = await store.for_job(job.id)
        assert pending.state == FollowUpState.PENDING and (await queue.get(job.id)).state == JobState.FAILED

        async with receiver(port=port) as hook:

            async def delivered() -> bool:
                return [followup.state for followup in await store.for_job(job.id)] == [FollowUpState.DONE]

            text = await run_until(delivered, "the notification after the restart")
        [body] = hook.bodies
        assert body["job_id"] == job.id and body["event_id"] == pending.payload["data"]["body"]["event_id"]
        assert '"event": "followups_resumed"' in text
    finally:
        await db.close()


async def test_an_attempt_cut_short_by_a_kill_is_taken_back_at_the_next_start(queue: JobQueue, tmp_path: Path) -> None:
    async with receiver() as hook:
        runner = runner_for(queue.db, hook.url, node="node-a")
        job = await store_notification(runner, queue)
        # A process of node-a claimed it and died in mid-call: its claim would hold for a whole lease.
        [claimed] = await runner.store.claim("node-a/dead", kinds={"notify"}, limit=5, lease=timedelta(hours=1))
        restarted = runner_for(queue.db, hook.url, node="node-a")
        try:
            assert await restarted.start() == 1
            await eventually(lambda: settled(restarted), "the notification", timeout=30)
        finally:
            await restarted.drain(seconds=5)
    [body] = hook.bodies
    assert body["job_id"] == job.id and body["event_id"] == claimed.payload["data"]["body"]["event_id"]
    [after] = await runner.store.for_job(job.id)
    assert after.state == FollowUpState.DONE and after.attempts == 2  # the killed try counts


async def test_a_shutdown_hands_an_attempt_in_progress_back(queue: JobQueue) -> None:
    answered = asyncio.Event()

    async def hang(_: int) -> web.StreamResponse:
        await answered.wait()
        return web.Response(status=204)

    async with receiver(hang) as hook:
        runner = runner_for(queue.db, hook.url)
        job = await store_notification(runner, queue)
        runner.nudge()
        await eventually(lambda: hook.bodies, "the first try")
        with structlog.testing.capture_logs() as logs:
            await runner.drain(seconds=0.1)
        answered.set()
    [handed_back] = events(logs, "followups_handed_back")
    assert handed_back["count"] == 1
    [after] = await runner.store.for_job(job.id)
    # Due at once for the next start, the cut-short try not counted.
    assert after.state == FollowUpState.PENDING and after.attempts == 0 and after.claimed_by is None


async def test_the_api_shows_a_jobs_followups_and_why_they_wait(tmp_path: Path) -> None:
    settings = engine_settings(tmp_path, notify_url=f"http://127.0.0.1:{free_port()}/hook?token=secret")
    with LiveService(settings) as live:
        media = str(broken_file(tmp_path))
        job = live.call(lambda parts: parts.queue.enqueue(NewJob(source=Source.MANUAL, media_path=media))).job

        async def tried(parts: Components) -> bool:
            return any(followup.last_error for followup in await parts.followups.store.for_job(job.id))

        await eventually(lambda: asyncio.to_thread(live.call, tried), "a failed try", timeout=60)
        answer = await asyncio.to_thread(requests.get, f"{live.url}/api/jobs/{job.id}", timeout=10)
    assert answer.status_code == 200
    [followup] = answer.json()["job"]["followups"]
    assert followup["kind"] == "notify" and followup["state"] == "pending" and followup["attempts"] >= 1
    assert followup["target"].startswith("http://127.0.0.1:") and "secret" not in answer.text
    assert "cannot reach NOTIFY_URL" in followup["last_error"] and followup["next_attempt_at"]


# --- retries --------------------------------------------------------------------------------------------------


async def test_pauses_double_up_to_the_cap_then_it_gives_up_with_the_reason(queue: JobQueue) -> None:
    async def down(_: int) -> web.StreamResponse:
        return web.Response(status=503)

    async with receiver(down) as hook:
        runner = runner_for(queue.db, hook.url, attempts=6, first_delay=0.1, max_delay=0.4)
        job = await store_notification(runner, queue)
        with structlog.testing.capture_logs() as logs:
            runner.nudge()
            await eventually(lambda: settled(runner), "six tries", timeout=30)
        await runner.drain(seconds=1)
    pauses = [line["next_try_seconds"] for line in events(logs, "followup_failed")]
    assert pauses == [0.1, 0.2, 0.4, 0.4, 0.4, None]
    gaps = [later - earlier for earlier, later in zip(hook.times, hook.times[1:], strict=False)]
    assert len(gaps) == 5 and all(gap >= pause - 0.01 for gap, pause in zip(gaps, pauses, strict=False)), gaps
    # Every try sends the same notification: a receiver can drop repeats by its event id.
    assert len({body["event_id"] for body in hook.bodies}) == 1 and set(hook.keys) == {hook.bodies[0]["event_id"]}
    [given_up] = events(logs, "followup_given_up")
    assert given_up["job_id"] == job.id and given_up["attempts"] == 6
    assert (
        given_up["reason"].startswith("gave up after 6 attempts: NOTIFY_URL") and "answered 503" in given_up["reason"]
    )
    [after] = await runner.store.for_job(job.id)
    assert after.state == FollowUpState.GIVEN_UP and after.last_error == given_up["reason"]
    assert after.summary()["next_attempt_at"] is None and after.summary()["last_error"] == given_up["reason"]


async def test_a_refusal_or_old_age_ends_it_at_once_with_the_reason(queue: JobQueue) -> None:
    async def gone(_: int) -> web.StreamResponse:
        return web.Response(status=404)

    async with receiver(gone) as hook:
        runner = runner_for(queue.db, hook.url, first_delay=0.01)
        refused = await store_notification(runner, queue)
        runner.nudge()
        await eventually(lambda: settled(runner), "the refusal", timeout=30)
        await runner.drain(seconds=1)
        [after] = await runner.store.for_job(refused.id)
        assert len(hook.bodies) == 1 and after.state == FollowUpState.GIVEN_UP
        assert after.last_error is not None and after.last_error.startswith("trying again cannot help: NOTIFY_URL")

        # Older than max_age (here: the service was down longer than that): given up without a try.
        old = runner_for(queue.db, hook.url, max_age=timedelta(microseconds=1))
        aged = await store_notification(old, queue)
        with structlog.testing.capture_logs() as logs:
            old.nudge()
            await eventually(lambda: settled(old), "the old one", timeout=30)
        await old.drain(seconds=1)
    assert len(hook.bodies) == 1
    [given_up] = events(logs, "followup_given_up")
    assert given_up["job_id"] == aged.id and given_up["reason"].startswith("not done within")


async def test_a_kind_no_node_does_any_more_is_ended_after_max_age(queue: JobQueue) -> None:
    store = FollowUpStore(queue.db)
    job = await finished_job(queue)
    await store.add(job, [NewFollowUp("jellyfin-refresh", "jellyfin", {})])
    assert await store.give_up_unclaimed(timedelta(hours=1), "too old") == 0  # still young
    assert await store.give_up_unclaimed(timedelta(0), "nobody does it") == 1
    [after] = await store.for_job(job.id)
    assert (after.state, after.last_error) == (FollowUpState.GIVEN_UP, "nobody does it")
    assert await store.prune(timedelta(hours=1)) == 0 and await store.prune(timedelta(0)) == 1


# --- several nodes --------------------------------------------------------------------------------------------


async def test_concurrent_claims_never_take_the_same_followup(db_url: str) -> None:
    dbs = [Database(to_async_url(db_url)) for _ in range(3)]
    try:
        await dbs[0].upgrade()
        queue = JobQueue(dbs[0])
        job = await finished_job(queue)
        await FollowUpStore(dbs[0]).add(job, [NewFollowUp("notify", "x", {"n": n}) for n in range(60)])
        stores = [FollowUpStore(db) for db in dbs]
        taken: list[list[int]] = [[] for _ in stores]

        async def claim_all(index: int) -> None:
            while claimed := await stores[index].claim(
                f"node-{index}/t", kinds={"notify"}, limit=3, lease=timedelta(hours=1)
            ):
                taken[index] += [followup.id for followup in claimed]

        await asyncio.gather(*(claim_all(index) for index in range(len(stores))))
    finally:
        for db in dbs:
            await db.close()
    every = [followup_id for ids in taken for followup_id in ids]
    assert len(every) == 60 and len(set(every)) == 60


async def test_two_runners_deliver_each_followup_once(db_url: str) -> None:
    async def slow(_: int) -> web.StreamResponse:
        await asyncio.sleep(0.02)  # a receiver that takes a moment, so that attempts overlap in time
        return web.Response(status=204)

    dbs = [Database(to_async_url(db_url)) for _ in range(2)]
    runners: list[FollowUps] = []
    try:
        await dbs[0].upgrade()
        queue = JobQueue(dbs[0])
        async with receiver(slow) as hook:
            runners = [runner_for(db, hook.url, node=f"node-{n}", concurrency=4) for n, db in enumerate(dbs)]
            jobs = [await store_notification(runners[0], queue) for _ in range(20)]
            for runner in runners:
                runner.nudge()
            await eventually(lambda: len(hook.bodies) >= 20 and settled(runners[0]), "20 notifications", timeout=60)
            for runner in runners:
                await runner.drain(seconds=5)
    finally:
        for runner in runners:
            await runner.drain(seconds=1)
        for db in dbs:
            await db.close()
    assert sorted(body["job_id"] for body in hook.bodies) == sorted(job.id for job in jobs)
    assert hook.overlaps == 0


# --- Bazarr upload: harmless to repeat ------------------------------------------------------------------------


async def test_an_upload_tried_again_is_not_sent_when_bazarr_already_has_it(tmp_path: Path) -> None:
    subtitle = tmp_path / "Show - S01E01.en.srt"
    subtitle.write_text("1\n00:00:01,000 --> 00:00:02,000\nHello.\n\n", encoding="utf-8")
    wanted = {"kind": "episode", "seriesid": 1, "episodeid": 101, "language": "en", "title": "Show"}
    data = {"kind": "episode", "upload": True, "language": "en", "subtitle": str(subtitle), "wanted": wanted}
    async with FakeBazarr() as bazarr:
        episode = bazarr.add_episode(1, 101, "/tv/Show/Show - S01E01.mkv", audio=["en"], missing=[lang("en")])
        action = BazarrNotify(bazarr.url, bazarr.api_key, mode="upload")
        with structlog.testing.capture_logs() as logs:
            await action.perform(data, Attempt(2, 7, None))  # still missing: uploaded
            episode.missing.clear()  # Bazarr now has it (the last try got through)
            await action.perform(data, Attempt(3, 7, None))
    assert len(bazarr.uploads) == 1
    [skipped] = events(logs, "bazarr_upload_not_needed")
    assert skipped["job_id"] == 7 and skipped["language"] == "en"


# --- the schema -----------------------------------------------------------------------------------------------


async def test_the_migration_upgrades_and_downgrades(db_url: str) -> None:
    db = Database(to_async_url(db_url))

    def tables(conn: Connection) -> set[str]:
        return set(inspect(conn).get_table_names())

    def downgrade(conn: Connection) -> None:
        config = migrate.alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0005")

    try:
        assert await migrate.upgrade(db.engine, "0005") == (None, "0005")
        async with db.engine.connect() as conn:
            assert "followups" not in await conn.run_sync(tables)
        assert await db.upgrade() == ("0005", migrate.head_revision())
        async with db.engine.connect() as conn:
            assert "followups" in await conn.run_sync(tables)
        queue = JobQueue(db)
        job = await finished_job(queue)
        assert await FollowUpStore(db).add(job, [NewFollowUp("notify", "x", {"a": 1})]) == 1
        async with db.engine.begin() as conn:
            await conn.run_sync(downgrade)
        async with db.engine.connect() as conn:
            assert "followups" not in await conn.run_sync(tables)
        assert await migrate.current_revision(db.engine) == "0005"
        assert (await queue.get(job.id)).state == JobState.PROCESSING  # the jobs are untouched
        assert await db.upgrade() == ("0005", migrate.head_revision())
    finally:
        await db.close()
