"""Cancel, SIGTERM and SIGKILL while a real transcription runs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.acceptance.engine_harness import engine_settings, long_speech, srt_text
from tests.media_factory import make_video
from tests.polling import eventually
from transcriptarr.db.database import Database
from transcriptarr.db.models import JobState, Source, Stage
from transcriptarr.queue.jobqueue import JobQueue, NewJob
from transcriptarr.service import build
from transcriptarr.settings import to_async_url

# Seconds on the clock: run alone (`make test` runs `serial` tests after the rest).
pytestmark = [pytest.mark.slow, pytest.mark.serial]


@pytest.fixture
def long_movie(tmp_path: Path) -> Path:
    """About fifty seconds of speech: long enough to interrupt mid-transcription."""
    speech = long_speech(tmp_path, 12)
    lib = tmp_path / "lib"
    lib.mkdir()
    return make_video(lib / "Long Film.mkv", [(speech, "eng", True)])


async def test_cancel_during_transcription_stops_within_seconds(tmp_path: Path, long_movie: Path) -> None:
    # The best preset is slow enough that a fast, idle machine is still transcribing when asked to stop.
    settings = engine_settings(tmp_path, quality="best")
    async with build(settings) as parts:
        job = (await parts.queue.enqueue(NewJob(source=Source.MANUAL, media_path=str(long_movie)))).job
        stop = asyncio.Event()
        pool = asyncio.create_task(parts.pool.run(stop))

        async def transcribing() -> bool:
            current = await parts.queue.get(job.id)
            return current.stage == Stage.TRANSCRIBING

        await eventually(transcribing, "the job to start transcribing")
        asked = time.monotonic()
        assert await parts.queue.cancel(job.id) == JobState.PROCESSING

        async def cancelled() -> bool:
            return (await parts.queue.get(job.id)).state == JobState.CANCELLED

        await eventually(cancelled, "the worker to stop the cancelled job", timeout=30)
        assert time.monotonic() - asked < 5.0
        stop.set()
        await pool
    assert not list(long_movie.parent.glob("*.srt"))
    assert not list((tmp_path / "data" / "work").iterdir())


def _service(tmp_path: Path, *args: str, grace: float = 1.0) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'engine.db'}",
        "WHISPER_MODEL": "bundled:tiny.en",
        "WHISPER_DEVICE": "cpu",
        "DATA_DIR": str(tmp_path / "data"),
        "MODEL_DIR": str(tmp_path / "models"),
        "LOG_FORMAT": "json",
        "NODE_NAME": "test-node",
        "SHUTDOWN_GRACE_SECONDS": str(grace),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "transcriptarr", "run", *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "service.log").open("ab"),
    )


async def _queued_job(tmp_path: Path, movie: Path) -> tuple[Database, JobQueue, int]:
    db = Database(to_async_url(f"sqlite:///{tmp_path / 'engine.db'}"))
    await db.upgrade()
    queue = JobQueue(db)
    job = (await queue.enqueue(NewJob(source=Source.MANUAL, media_path=str(movie)))).job
    return db, queue, job.id


def _leftovers(tmp_path: Path) -> list[Path]:
    names = ("*.transcriptarr-tmp*", "*.part", "job-*.pcm")
    return [p for pattern in names for p in tmp_path.rglob(pattern)]


async def test_sigkill_during_transcription_leaves_nothing_partial_and_restart_finishes(
    tmp_path: Path, long_movie: Path
) -> None:
    db, queue, job_id = await _queued_job(tmp_path, long_movie)
    try:
        service = _service(tmp_path)

        async def transcribing() -> bool:
            current = await queue.get(job_id)
            return current.stage == Stage.TRANSCRIBING and current.progress > 0

        await eventually(transcribing, "the service to start transcribing")
        service.send_signal(signal.SIGKILL)
        service.wait(timeout=30)
        assert not list(long_movie.parent.glob("*.srt"))
        assert (await queue.get(job_id)).state == JobState.PROCESSING  # as the killed process left it

        again = _service(tmp_path, "--once")
        assert again.wait(timeout=300) == 0, (tmp_path / "service.log").read_text()[-3000:]
        job = await queue.get(job_id)
        assert job.state == JobState.COMPLETED and job.attempts == 2
        cues, words = srt_text(long_movie.with_name("Long Film.en.srt"))
        assert cues and "rivers" in words
        assert _leftovers(tmp_path) == []
    finally:
        await db.close()


async def test_sigterm_hands_the_running_job_back_and_exits_cleanly(tmp_path: Path, long_movie: Path) -> None:
    db, queue, job_id = await _queued_job(tmp_path, long_movie)
    try:
        # No grace: however fast this machine transcribes, the job is still running when asked to stop.
        service = _service(tmp_path, grace=0)

        async def transcribing() -> bool:
            current = await queue.get(job_id)
            return current.stage == Stage.TRANSCRIBING and current.progress > 0

        await eventually(transcribing, "the service to start transcribing")
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=60) == 0
        job = await queue.get(job_id)
        # Past the grace period the job is handed back, its attempt not counted.
        assert job.state == JobState.QUEUED and job.attempts == 0 and job.worker is None
        assert _leftovers(tmp_path) == []
        assert not list(long_movie.parent.glob("*.srt"))
    finally:
        await db.close()
