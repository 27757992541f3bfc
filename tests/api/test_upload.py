"""A 2-hour film's audio (230 MB) is taken in within Bazarr's 5 s while every worker is busy.

Bazarr sends the body as one `sendall` under its 5 s response timeout; missing
it throttles the provider for 24 hours. The request itself lasts until its job
ends, so intake is measured by what the server has done: the whole file is in
the spool and its job is queued. The worker's own job is still running then.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.acceptance.engine_harness import engine_settings
from tests.api.conftest import bazarr_jobs
from tests.api.live import LiveService, bazarr_post
from tests.media_factory import concat_audio
from transcriptarr.db.models import Job, JobState

# Seconds on the clock: run alone (`make test` runs `serial` tests after the rest).
pytestmark = pytest.mark.serial

FILM_BYTES = 230_000_000  # 2 hours of s16le 16 kHz mono
BUDGET_SECONDS = 5.0


def film_audio() -> bytes:
    """A little noise (so the content is not trivially compressible), then zeros."""
    noise = os.urandom(1 << 20)
    return noise + bytes(FILM_BYTES - len(noise))


def test_230_mb_upload_is_taken_in_within_5_s_while_every_worker_is_busy(tmp_path: Path, long_wav: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    busy = concat_audio(library / "busy.wav", [long_wav, long_wav, long_wav])
    settings = engine_settings(tmp_path, transcriptarr_mode="standalone,provider", library_paths=str(library))
    with LiveService(settings, keepalive_seconds=1) as live:
        assert len(live.parts.pool.workers()) == 1
        created = requests.post(f"{live.url}/api/jobs", json={"path": str(busy), "language": "en"}, timeout=10)
        busy_id = created.json()["jobs"][0]["job"]["id"]
        _wait_until(lambda: live.call(lambda parts: parts.queue.get(busy_id)).state == JobState.PROCESSING, 30)

        audio = film_audio()
        answers: list[requests.Response] = []
        started = time.monotonic()
        sender = threading.Thread(
            target=lambda: answers.append(
                bazarr_post(
                    live.url, "asr", audio, {"task": "transcribe", "language": "en", "output": "srt", "encode": "false"}
                )
            )
        )
        sender.start()
        upload: Job = _wait_until(lambda: next(iter(bazarr_jobs(live)), None), 30)
        intake = time.monotonic() - started

        # The whole body is on disk and queued, behind a worker that is still transcribing.
        assert upload.state == JobState.QUEUED
        assert Path(str(upload.upload_path)).stat().st_size == FILM_BYTES
        assert live.call(lambda parts: parts.queue.get(busy_id)).state == JobState.PROCESSING
        assert intake < BUDGET_SECONDS, f"intake took {intake:.2f} s"

        # Nobody needs two hours of silence transcribed: cancel both, the waiting request is answered.
        requests.post(f"{live.url}/api/jobs/{upload.id}/cancel", timeout=10)
        requests.post(f"{live.url}/api/jobs/{busy_id}/cancel", timeout=10)
        sender.join(60)
        [answer] = answers
        assert answer.status_code == 409 and answer.text.startswith("ERROR: ")
        assert not Path(str(upload.upload_path)).exists()
    print(f"230 MB intake while busy: {intake:.2f} s")


def _wait_until(probe, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout} s")
