"""Logs as the monitoring interface: one format for every line, job fields on every job line, one summary per job.

The format tests run a small Python process (its stderr is what a container's log
collector reads); the job tests run the real worker pool on a real SQLite queue with
a stand-in runner, so each way a job can end is quick to reach.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import pytest
import structlog

from transcriptarr.db.database import Database
from transcriptarr.db.models import JobState, Source, Stage
from transcriptarr.logs import configure_logging
from transcriptarr.queue.jobqueue import JobQueue, NewJob
from transcriptarr.queue.registry import WorkerRegistry
from transcriptarr.settings import to_async_url
from transcriptarr.workers.job_runner import JobCancelled, JobContext, JobFailure, Outcome
from transcriptarr.workers.pool import PoolConfig, WorkerPool

# The fields of the `job_finished` summary line (docs/logging.md).
SUMMARY_FIELDS = {
    "job_id",
    "path",
    "stage",
    "source",
    "result",
    "reason",
    "error",
    "subtitle",
    "media_seconds",
    "processing_seconds",
    "rtf",
    "language",
    "target_language",
    "task",
    "model",
    "device",
    "worker",
    "attempt",
    "recorded",
}

LOGGING_PROGRAM = """
import logging, warnings, structlog
from transcriptarr.logs import configure_logging
configure_logging("info", "{log_format}")
configure_logging("info", "{log_format}")  # twice, as tests do: still one line per event
log = structlog.get_logger("transcriptarr.example")
structlog.contextvars.bind_contextvars(job_id=7, path="/media/Film.mkv", stage="transcribing")
log.info("our_line", answer=42)
log.debug("hidden_debug_line")
logging.getLogger("aiohttp.server").warning("a library line about %s", "something")
logging.getLogger("sqlalchemy.engine").info("SELECT hidden")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("our_failure")
    logging.getLogger("asyncio").error("a library failure", exc_info=True)
warnings.warn("a warning from Python")
"""


def run_logging_program(log_format: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOGGING_PROGRAM.format(log_format=log_format)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # logs never go to stdout: the CLI's answers do
    return done.stderr.splitlines()


def test_json_format_gives_one_json_object_per_line_for_our_lines_and_the_libraries() -> None:
    lines = [json.loads(line) for line in run_logging_program("auto")]  # auto: stderr is a pipe, not a terminal
    by_event = {line["event"]: line for line in lines}
    assert len(lines) == len(by_event) == 5, lines  # no duplicates from configuring twice
    ours = by_event["our_line"]
    assert ours["answer"] == 42 and ours["level"] == "info" and ours["logger"] == "transcriptarr.example"
    assert ours["timestamp"].endswith("Z")
    library = by_event["a library line about something"]
    assert library["level"] == "warning" and library["logger"] == "aiohttp.server"
    for line in lines:
        assert {"timestamp", "level", "event", "logger"} <= line.keys()
        assert (line["job_id"], line["path"], line["stage"]) == (7, "/media/Film.mkv", "transcribing")
    assert "ZeroDivisionError" in by_event["our_failure"]["exception"]
    assert "ZeroDivisionError" in by_event["a library failure"]["exception"]
    assert any("a warning from Python" in line["event"] and line["logger"] == "py.warnings" for line in lines)
    assert "hidden_debug_line" not in by_event and "SELECT hidden" not in by_event


def test_console_format_on_request_is_readable_text() -> None:
    lines = run_logging_program("console")
    ours = next(line for line in lines if "our_line" in line)
    assert "answer=42" in ours and "job_id=7" in ours and "[info" in ours
    assert any("a library line about something" in line and "[warning" in line for line in lines)
    with pytest.raises(json.JSONDecodeError):
        json.loads(ours)


@pytest.mark.usefixtures("restore_logging")
async def test_library_lines_from_a_job_thread_carry_the_job_fields() -> None:
    """faster-whisper logs from the inference thread; asyncio.to_thread carries the job's context there."""
    configure_logging("info", "json")
    out = io.StringIO()
    with redirect_stderr(out), structlog.contextvars.bound_contextvars(job_id=3, path="/m/a.mkv", stage="probing"):
        await asyncio.to_thread(logging.getLogger("faster_whisper").warning, "from the inference thread")
    [line] = [json.loads(text) for text in out.getvalue().splitlines()]
    assert line["event"] == "from the inference thread"
    assert (line["job_id"], line["path"], line["stage"]) == (3, "/m/a.mkv", "probing")


# --- the worker pool's job lines ---

Behaviour = Callable[[JobContext], Awaitable[Outcome]]
MEDIA = "/media/Film (2001).mkv"


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[JobQueue]:
    db = Database(to_async_url(f"sqlite:///{tmp_path / 'logs.db'}"))
    await db.upgrade()
    yield JobQueue(db, lease_seconds=30, max_attempts=3, backoff_seconds=60)
    await db.close()


def captured() -> Any:
    """structlog's capture, with the context variables (job_id, path, stage) merged in as configured."""
    return structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars])


async def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.01)


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [line for line in logs if line["event"] == name]


async def run_one_job(
    queue: JobQueue, behaviour: Behaviour, logs: list[dict[str, Any]], *, stop_when: str = "job_finished"
) -> None:
    """Queue one job and run the pool on it until a `stop_when` line is logged, then stop the pool."""
    await queue.enqueue(NewJob(source=Source.WATCH, media_path=MEDIA))
    config = PoolConfig(
        node="test", poll_seconds=0.05, heartbeat_seconds=0.02, grace_seconds=0.05, progress_log_seconds=0.02
    )

    async def runner(ctx: JobContext, device: str) -> Outcome:
        return await behaviour(ctx)

    pool = WorkerPool(queue, WorkerRegistry(queue.db), runner, config)
    stop = asyncio.Event()
    running = asyncio.create_task(pool.run(stop))
    await wait_until(lambda: bool(events(logs, stop_when)), f"a {stop_when} line")
    stop.set()
    await asyncio.wait_for(running, timeout=30)


def assert_job_lines_carry_the_job_fields(logs: list[dict[str, Any]]) -> None:
    job_lines = [line for line in logs if "job_id" in line]
    assert job_lines
    for line in job_lines:
        assert line["path"] == MEDIA and line["stage"] in {s.value for s in Stage}, line


async def test_stage_changes_reach_the_heartbeat_and_progress_lines(queue: JobQueue) -> None:
    with captured() as logs:

        async def transcribe_half_then_write(ctx: JobContext) -> Outcome:
            ctx.enter(Stage.TRANSCRIBING, media_duration=100.0)
            ctx.stage_started -= 10  # as if transcribing had begun 10 s ago: half of 100 s at 5x real time
            ctx.on_progress(0.5)
            await wait_until(lambda: any(line.get("pct") == 50.0 for line in logs), "a progress line at 50 %")
            structlog.get_logger("transcriptarr.test").info("runner_line")  # no job fields given: from context
            ctx.enter(Stage.WRITING)
            fields = {"source_language": "en", "task": "transcribe", "model": "tiny", "device": "cpu"}
            return Outcome(result_path="/media/Film (2001).en.srt", fields=fields)

        await run_one_job(queue, transcribe_half_then_write, logs)

    assert_job_lines_carry_the_job_fields(logs)
    assert events(logs, "runner_line")[0]["stage"] == "transcribing"
    progress = [line for line in events(logs, "job_progress") if line["pct"] == 50.0]
    transcribing = [line for line in progress if line["stage"] == "transcribing"]
    # A heartbeat after the runner entered WRITING (a busy machine) carries the new stage.
    assert transcribing and all(line["stage"] == "writing" for line in progress[len(transcribing) :]), progress
    line = transcribing[-1]
    assert line["media_seconds"] == 100.0 and line["elapsed_seconds"] >= 0
    assert line["speed_x"] == pytest.approx(5, rel=0.2) and line["rtf"] == pytest.approx(0.2, rel=0.2)
    assert line["eta_seconds"] == pytest.approx(10, abs=2)  # 50 media seconds left at 5x
    [summary] = events(logs, "job_finished")
    assert summary.keys() >= SUMMARY_FIELDS
    assert summary["result"] == "completed" and summary["stage"] == "writing" and summary["source"] == "watch"
    assert summary["media_seconds"] == 100.0 and summary["language"] == "en" and summary["model"] == "tiny"
    assert summary["rtf"] == pytest.approx(summary["processing_seconds"] / 100, abs=0.01)
    assert summary["subtitle"] == "/media/Film (2001).en.srt" and summary["attempt"] == 1


async def fail_for_good(ctx: JobContext) -> Outcome:
    ctx.enter(Stage.PROBING)
    raise JobFailure("not a media file", permanent=True)


async def fail_for_now(ctx: JobContext) -> Outcome:
    ctx.enter(Stage.EXTRACTING_AUDIO)
    raise JobFailure("the disk is full", permanent=False)


async def skip(ctx: JobContext) -> Outcome:
    ctx.enter(Stage.PROBING)
    return Outcome(skipped="a subtitle exists", fields={"media_duration": 60.0})


async def cancelled(ctx: JobContext) -> Outcome:
    ctx.enter(Stage.TRANSCRIBING)
    raise JobCancelled("cancelled on request")


async def crash(ctx: JobContext) -> Outcome:
    ctx.enter(Stage.DETECTING_LANGUAGE)
    raise KeyError("a bug")


@pytest.mark.parametrize(
    ("behaviour", "result", "stage", "level", "state"),
    [
        (fail_for_good, "failed", "probing", "warning", JobState.FAILED),
        (fail_for_now, "retrying", "extracting_audio", "warning", JobState.QUEUED),
        (crash, "retrying", "detecting_language", "warning", JobState.QUEUED),
        (skip, "skipped", "probing", "info", JobState.COMPLETED),
        (cancelled, "cancelled", "transcribing", "info", JobState.CANCELLED),
    ],
)
async def test_every_end_of_a_job_gets_one_summary_line(
    queue: JobQueue, behaviour: Behaviour, result: str, stage: str, level: str, state: JobState
) -> None:
    with captured() as logs:
        await run_one_job(queue, behaviour, logs)
    assert_job_lines_carry_the_job_fields(logs)
    [summary] = events(logs, "job_finished")
    assert summary.keys() >= SUMMARY_FIELDS
    assert (summary["result"], summary["stage"], summary["log_level"]) == (result, stage, level)
    assert summary["recorded"] is True and summary["device"] == "cpu" and summary["worker"] == "test/cpu/0"
    assert (await queue.get(summary["job_id"])).state == state
    if result in ("failed", "retrying"):
        assert summary["error"] and events(logs, "job_failed")[0]["error"] == summary["error"]
    if result == "skipped":
        assert summary["reason"] == "a subtitle exists" and summary["media_seconds"] == 60.0


async def test_a_job_handed_back_at_shutdown_gets_a_released_summary(queue: JobQueue) -> None:
    async def never_finish(ctx: JobContext) -> Outcome:
        ctx.enter(Stage.TRANSCRIBING)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    with captured() as logs:
        await run_one_job(queue, never_finish, logs, stop_when="job_stage")
    [summary] = events(logs, "job_finished")
    assert (summary["result"], summary["stage"]) == ("released", "transcribing")
    assert (await queue.get(summary["job_id"])).state == JobState.QUEUED
