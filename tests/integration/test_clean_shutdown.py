"""A stop while a job runs past the grace logs no error: no "_GatheringFuture exception was never retrieved".

The pool used to wait for its workers with `asyncio.gather`; cancelling them at the end of the grace left
the gather holding a CancelledError that nobody read, which asyncio reports (at error level) when the
future is collected. Shown on the pool itself, with every asyncio complaint captured, and on the real
service stopped by SIGTERM.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.polling import eventually
from transcriptarr.db.database import Database
from transcriptarr.db.models import JobState, Source
from transcriptarr.queue.jobqueue import JobQueue, NewJob
from transcriptarr.queue.registry import WorkerRegistry
from transcriptarr.settings import to_async_url
from transcriptarr.workers.job_runner import JobContext, Outcome
from transcriptarr.workers.pool import PoolConfig, WorkerPool

REPO = Path(__file__).resolve().parents[2]


async def test_stop_past_the_grace_hands_the_job_back_and_asyncio_has_nothing_to_report(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(to_async_url(f"sqlite:///{tmp_path / 'queue.db'}"))
    await db.upgrade()
    queue = JobQueue(db)
    loop = asyncio.get_running_loop()
    complaints: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: complaints.append(context))
    try:
        job = (await queue.enqueue(NewJob(source=Source.MANUAL, media_path=str(tmp_path / "film.mkv")))).job
        running = asyncio.Event()

        async def longer_than_the_grace(ctx: JobContext, device: str) -> Outcome:
            running.set()
            await asyncio.Event().wait()  # a transcription that will not end within the grace
            raise AssertionError("unreachable")

        pool = WorkerPool(queue, WorkerRegistry(db), longer_than_the_grace, PoolConfig(node="n1", grace_seconds=0.1))
        stop = asyncio.Event()
        with caplog.at_level(logging.WARNING, logger="asyncio"), capture_logs() as logs:
            task = asyncio.create_task(pool.run(stop))
            await running.wait()
            stop.set()
            summary = await task
            del task
            gc.collect()  # asyncio reports an unread exception when the future holding it is collected
            await asyncio.sleep(0)  # and any callback that report scheduled has run
        assert complaints == []
        assert [record.getMessage() for record in caplog.records] == []
        assert [entry for entry in logs if entry["log_level"] in ("error", "critical")] == []
        assert summary.released == 1
        released = await queue.get(job.id)
        assert released.state == JobState.QUEUED and released.worker is None
    finally:
        loop.set_exception_handler(None)
        await db.close()


async def test_sigterm_during_a_job_exits_0_and_logs_no_error(tmp_path: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    media = Path(shutil.copy(REPO / "tests" / "data" / "jfk.flac", library / "jfk.flac"))
    url = f"sqlite:///{tmp_path / 'service.db'}"
    db = Database(to_async_url(url))
    await db.upgrade()
    queue = JobQueue(db)
    log_path = tmp_path / "service.log"
    try:
        job = (await queue.enqueue(NewJob(source=Source.MANUAL, media_path=str(media)))).job
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DATA_DIR": str(tmp_path / "data"),
            "MODEL_DIR": str(tmp_path / "models"),
            "WHISPER_MODEL": "bundled:tiny.en",
            "WHISPER_DEVICE": "cpu",
            "LOG_FORMAT": "json",
            "NODE_NAME": "shutdown-test",
            "HTTP_ENABLED": "false",
            "SHUTDOWN_GRACE_SECONDS": "0",  # whatever stage the job is in, the grace is over at once
        }
        with log_path.open("ab") as log_file:
            service = subprocess.Popen(
                [sys.executable, "-m", "transcriptarr", "run"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
        try:

            async def processing() -> bool:
                return (await queue.get(job.id)).state == JobState.PROCESSING

            await eventually(processing, "the service to start the job", timeout=60)
            service.send_signal(signal.SIGTERM)
            assert service.wait(timeout=60) == 0, log_path.read_text()[-3000:]
        finally:
            if service.poll() is None:
                service.kill()
                service.wait()
        text = log_path.read_text()
        assert "never retrieved" not in text, text[-3000:]
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        assert [line for line in lines if line.get("level") in ("error", "critical")] == []
        assert [line for line in text.splitlines() if not line.startswith("{")] == []  # no traceback either
        assert any(line.get("event") == "service_stopped" and line.get("released") == 1 for line in lines)
        assert (await queue.get(job.id)).state == JobState.QUEUED
    finally:
        await db.close()
