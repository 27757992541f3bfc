"""NOTIFY_URL: real jobs through the real service parts, POSTed to a real receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web

from tests.acceptance.engine_harness import engine_settings
from tests.media_factory import fixture_path, media_duration
from transcriptarr.db.models import Job, JobState, Source
from transcriptarr.integrations.notify import Notify, describe_url, notify_from_settings
from transcriptarr.queue.jobqueue import NewJob
from transcriptarr.service import Components, build

Answer = Callable[[int], Awaitable[web.StreamResponse]]  # the answer to the n-th request (1, 2, ...)


@dataclass
class Receiver:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)


async def ok(_: int) -> web.StreamResponse:
    return web.json_response({"ok": True})


@contextlib.asynccontextmanager
async def receiver(answer: Answer = ok) -> AsyncIterator[Receiver]:
    """An HTTP server on a free loopback port that records each POST to /hook and answers with `answer`."""
    got = Receiver(url="")

    async def hook(request: web.Request) -> web.StreamResponse:
        assert request.content_type == "application/json"
        got.bodies.append(await request.json())
        got.queries.append(request.query_string)
        return await answer(len(got.bodies))

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    got.url = f"http://127.0.0.1:{port}/hook?token=secret-token"
    try:
        yield got
    finally:
        await runner.cleanup()


async def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)


def broken_file(folder: Path, name: str = "Broken.mkv") -> Path:
    """A file that looks like media and is not: its job fails for good at once (no model needed)."""
    path = folder / name
    path.write_text("this is not a video")
    return path


async def run_jobs(parts: Components, *media: Path) -> list[Job]:
    ids = [(await parts.queue.enqueue(NewJob(source=Source.MANUAL, media_path=str(m)))).job.id for m in media]
    await parts.pool.run(asyncio.Event(), once=True)
    return [await parts.queue.get(job_id) for job_id in ids]


@pytest.mark.slow
async def test_a_completed_transcription_is_posted_to_notify_url(tmp_path: Path) -> None:
    audio = tmp_path / "lib" / "Kennedy.flac"
    audio.parent.mkdir()
    shutil.copy(fixture_path("jfk.flac"), audio)
    async with receiver() as hook:
        settings = engine_settings(tmp_path, notify_url=hook.url, node_name="node-a")
        async with build(settings) as parts:
            [job] = await run_jobs(parts, audio)
            assert job.state == JobState.COMPLETED, job.error
            await wait_until(lambda: bool(hook.bodies), "the notification")
    [body] = hook.bodies
    assert hook.queries == ["token=secret-token"]
    assert body == {
        "event": "job.completed",
        "event_id": body["event_id"],  # the same on every try (test_durable_followups.py)
        "job_id": job.id,
        "file": str(audio),
        "source": "manual",
        "language": "en",
        "target_language": "en",
        "task": "transcribe",
        "subtitle": str(audio.with_suffix(".lrc")),
        "skipped": None,
        "duration_seconds": pytest.approx(media_duration(audio), abs=0.1),
        "processing_seconds": job.processing_seconds,
        "error": None,
        "attempts": 1,
        "finished_at": body["finished_at"],
        "node": "node-a",
    }
    assert Path(body["subtitle"]).is_file() and body["processing_seconds"] > 0
    assert datetime.fromisoformat(body["finished_at"]) == job.finished_at


async def test_a_job_that_fails_for_good_is_posted_as_job_failed(tmp_path: Path) -> None:
    broken = broken_file(tmp_path)
    async with receiver() as hook, build(engine_settings(tmp_path, notify_url=hook.url)) as parts:
        [job] = await run_jobs(parts, broken)
        await wait_until(lambda: bool(hook.bodies), "the notification")
    [body] = hook.bodies
    assert job.state == JobState.FAILED and job.error
    assert body["event"] == "job.failed" and body["job_id"] == job.id and body["file"] == str(broken)
    assert body["error"] == job.error and str(broken) in body["error"]
    assert body["subtitle"] is None and body["attempts"] == 1 and body["node"] == parts.settings.node_name


async def test_a_receiver_that_fails_twice_gets_the_notification_on_the_third_try(tmp_path: Path) -> None:
    async def down_twice(n: int) -> web.StreamResponse:
        return web.Response(status=503) if n <= 2 else web.Response(status=204)

    async with (
        receiver(down_twice) as hook,
        build(engine_settings(tmp_path, notify_url=hook.url, notify_attempts=3)) as parts,
    ):
        parts.followups.first_delay = 0.05  # the pauses grow from here; seconds in real life
        with structlog.testing.capture_logs() as logs:
            [job] = await run_jobs(parts, broken_file(tmp_path))
            await wait_until(lambda: parts.followups.pending == 0 and len(hook.bodies) == 3, "three tries")
    assert [body["job_id"] for body in hook.bodies] == [job.id] * 3
    failures = [line for line in logs if line["event"] == "followup_failed"]
    assert [line["attempt"] for line in failures] == [1, 2]
    assert all("answered 503" in line["error"] and "secret-token" not in line["error"] for line in failures)
    [done] = [line for line in logs if line["event"] == "followup_done"]
    assert (done["action"], done["attempt"]) == ("notify", 3)


@pytest.mark.parametrize(("status", "tries"), [(404, 1), (400, 1), (429, 2), (408, 2), (500, 2)])
async def test_only_answers_that_say_later_are_retried(tmp_path: Path, status: int, tries: int) -> None:
    async def refuse(_: int) -> web.StreamResponse:
        return web.Response(status=status)

    async with (
        receiver(refuse) as hook,
        build(engine_settings(tmp_path, notify_url=hook.url, notify_attempts=2)) as parts,
    ):
        parts.followups.first_delay = 0.05
        with structlog.testing.capture_logs() as logs:
            await run_jobs(parts, broken_file(tmp_path))
            await wait_until(lambda: parts.followups.pending == 0 and bool(hook.bodies), "the follow-up to end")
    assert len(hook.bodies) == tries
    last = [line for line in logs if line["event"] == "followup_failed"][-1]
    assert last["next_try_seconds"] is None and f"answered {status}" in last["error"]


async def test_a_receiver_that_never_answers_does_not_hold_up_the_next_job(tmp_path: Path) -> None:
    release = asyncio.Event()

    async def hang(_: int) -> web.StreamResponse:
        await release.wait()
        return web.Response(status=204)

    first, second = broken_file(tmp_path, "First.mkv"), broken_file(tmp_path, "Second.mkv")
    async with receiver(hang) as hook:
        settings = engine_settings(tmp_path, notify_url=hook.url, notify_timeout_seconds=120)
        async with build(settings) as parts:
            jobs = await asyncio.wait_for(run_jobs(parts, first, second), timeout=60)
            # Both jobs are done while the first job's notification still waits for its answer.
            assert [job.state for job in jobs] == [JobState.FAILED, JobState.FAILED]
            # Stored with each job's result, both are being sent at once: neither waits for the other.
            await wait_until(lambda: parts.followups.pending == 2 and len(hook.bodies) == 2, "both notifications")
            assert not release.is_set()
            release.set()
            await wait_until(lambda: parts.followups.pending == 0, "the notifications to be answered")
    assert sorted(body["file"] for body in hook.bodies) == [str(first), str(second)]


async def test_a_receiver_that_is_too_slow_times_out_and_is_retried(tmp_path: Path) -> None:
    async def slow_first(n: int) -> web.StreamResponse:
        if n == 1:
            await asyncio.sleep(30)  # longer than the notification's timeout: the client gives up first
        return web.Response(status=200)

    async with receiver(slow_first) as hook:
        settings = engine_settings(tmp_path, notify_url=hook.url, notify_timeout_seconds=0.5)
        async with build(settings) as parts:
            parts.followups.first_delay = 0.05
            with structlog.testing.capture_logs() as logs:
                await run_jobs(parts, broken_file(tmp_path))
                await wait_until(lambda: parts.followups.pending == 0, "the notification")
    assert len(hook.bodies) == 2
    [failure] = [line for line in logs if line["event"] == "followup_failed"]
    assert "did not answer within 0.5 s" in failure["error"]


def test_notify_is_off_without_a_url_and_wants_only_completed_or_failed_jobs(tmp_path: Path) -> None:
    assert notify_from_settings(engine_settings(tmp_path)) is None
    notify = notify_from_settings(engine_settings(tmp_path, notify_url="http://127.0.0.1:9/x", notify_attempts=7))
    assert isinstance(notify, Notify) and notify.attempts == 7
    wanted = {state: notify.wants(Job(state=state)) for state in JobState}
    assert wanted == {
        JobState.QUEUED: False,
        JobState.PROCESSING: False,
        JobState.COMPLETED: True,
        JobState.FAILED: True,
        JobState.CANCELLED: False,
    }


def test_the_logged_url_has_no_credentials_or_query() -> None:
    assert (
        describe_url("https://user:pw@hooks.example.org:8443/t/x?token=secret") == "https://hooks.example.org:8443/t/x"
    )
    assert describe_url("http://[::1]:9000/hook?k=v") == "http://[::1]:9000/hook"
