"""A job that fails because the service itself is short of resources is retried without counting the attempt.

Out of file descriptors, ffprobe cannot even be started ("could not run ffprobe: [Errno 24] Too many open
files"); before, each such attempt counted, and a long shortage failed good files for good.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from transcriptarr.db.database import Database
from transcriptarr.db.models import JobState, Source
from transcriptarr.queue.jobqueue import JobQueue, NewJob
from transcriptarr.settings import to_async_url
from transcriptarr.workers.job_runner import JobFailure
from transcriptarr.workers.shortage import service_shortage, shortage_reason

# A child process with its file descriptors used up runs the real probe and extraction, and prints what
# they raise: the same exceptions a worker gets.
_EXHAUSTED = textwrap.dedent(
    """
    import asyncio, os, resource, sys
    from pathlib import Path
    from transcriptarr.media.audio import extract_audio
    from transcriptarr.media.probe import ProbeError, probe_media
    from transcriptarr.workers.job_runner import JobFailure
    from transcriptarr.workers.shortage import service_shortage

    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    media = Path(sys.argv[1])

    async def main():
        held = []
        try:
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        attempts = (probe_media(media), extract_audio(media, 0, media.with_suffix(".pcm")))
        for attempt in attempts:
            try:
                try:
                    await attempt
                except Exception as exc:  # as the job runner does: the cause hidden, the context kept
                    raise JobFailure(str(exc), permanent=getattr(exc, "permanent", True)) from None
            except JobFailure as failure:
                shortage = service_shortage(failure)
                print(type(failure.__context__).__name__, shortage.errno if shortage else None)

    asyncio.run(main())
    """
)


def test_a_real_probe_and_extraction_out_of_descriptors_are_recognised_as_the_services_shortage(
    tmp_path: Path,
) -> None:
    media = tmp_path / "tone.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", str(media)], check=True, timeout=60
    )
    done = subprocess.run(
        [sys.executable, "-c", _EXHAUSTED, str(media)], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split("\n")[:2] == [f"ProbeError {errno.EMFILE}", f"AudioExtractError {errno.EMFILE}"], (
        done.stdout + done.stderr
    )


def test_a_failure_of_the_file_is_not_a_shortage() -> None:
    try:
        try:
            raise OSError(errno.EACCES, "Permission denied")
        except OSError as exc:
            raise JobFailure(str(exc), permanent=True) from None
    except JobFailure as failure:
        assert service_shortage(failure) is None
    reason = shortage_reason("could not run ffprobe", OSError(errno.EMFILE, os.strerror(errno.EMFILE)))
    assert "not the file" in reason and "without counting an attempt" in reason


async def test_an_uncounted_failure_gives_the_attempt_back_even_at_the_last_one(tmp_path: Path) -> None:
    db = Database(to_async_url(f"sqlite:///{tmp_path / 'queue.db'}"))
    await db.upgrade()
    try:
        queue = JobQueue(db, lease_seconds=30, max_attempts=2, backoff_seconds=0)
        job = (await queue.enqueue(NewJob(source=Source.MANUAL, media_path="/media/a.mkv"))).job
        for _ in range(5):  # far more shortages than max_attempts: never failed for good
            [claimed] = await queue.claim("w", "node")
            state = await queue.fail(claimed.id, "w", "EMFILE", permanent=False, counted=False)
            assert state == JobState.QUEUED
            assert (await queue.get(job.id)).attempts == 0
        [claimed] = await queue.claim("w", "node")
        assert await queue.fail(claimed.id, "w", "a real error", permanent=False) == JobState.QUEUED
        [claimed] = await queue.claim("w", "node")
        assert await queue.fail(claimed.id, "w", "a real error", permanent=False) == JobState.FAILED
        assert (await queue.get(job.id)).attempts == 2
    finally:
        await db.close()
