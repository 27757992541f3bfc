"""The logs of real jobs, as a log collector reads them: JSON lines on stderr."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.engine_harness import engine_settings, long_speech
from tests.media_factory import make_video, media_duration
from tests.unit.test_logs import SUMMARY_FIELDS
from transcriptarr.db.database import Database
from transcriptarr.db.models import JobState, Source, Stage
from transcriptarr.logs import configure_logging
from transcriptarr.queue.jobqueue import JobQueue, NewJob
from transcriptarr.service import build
from transcriptarr.settings import to_async_url

pytestmark = pytest.mark.slow

STAGES = {stage.value for stage in Stage}


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line must be one JSON object; a line that is not fails the test, naming it."""
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a log line is not JSON: {line!r}")
    return lines


def assert_job_lines_name_the_job(lines: list[dict[str, Any]], job_id: int, path: Path) -> list[dict[str, Any]]:
    job_lines = [line for line in lines if "job_id" in line]
    assert job_lines
    for line in job_lines:
        assert (line["job_id"], line["path"]) == (job_id, str(path)) and line["stage"] in STAGES, line
    return job_lines


@pytest.mark.usefixtures("restore_logging")
async def test_a_real_transcription_logs_progress_and_one_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # About 30 s of speech: two 30-second windows for Whisper, so progress is seen between them.
    movie = make_video(tmp_path / "Film.mkv", [(long_speech(tmp_path, 6), "eng", True)])
    settings = engine_settings(tmp_path, progress_log_seconds=0.05)
    configure_logging("info", "json")
    capsys.readouterr()
    async with build(settings) as parts:
        # A quicker heartbeat than the service's one second, so a fast machine still shows progress mid-way.
        parts.pool.config = dataclasses.replace(parts.pool.config, heartbeat_seconds=0.05)
        job = (await parts.queue.enqueue(NewJob(source=Source.MANUAL, media_path=str(movie)))).job
        await parts.pool.run(asyncio.Event(), once=True)
        assert (await parts.queue.get(job.id)).state == JobState.COMPLETED
    lines = json_lines(capsys.readouterr().err)

    job_lines = assert_job_lines_name_the_job(lines, job.id, movie)
    assert {line["stage"] for line in job_lines} >= {"pending", "probing", "extracting_audio", "transcribing"}
    assert next(line for line in lines if line["event"] == "model_loaded")["job_id"] == job.id
    progress = [line for line in job_lines if line["event"] == "job_progress"]
    moving = [line for line in progress if line["stage"] == "transcribing" and line["pct"] > 0]
    assert moving, progress
    for line in moving:
        assert line["speed_x"] > 0 and line["rtf"] > 0 and line["eta_seconds"] >= 0 and line["media_seconds"] > 0
    [summary] = [line for line in lines if line["event"] == "job_finished"]
    assert summary.keys() >= SUMMARY_FIELDS
    assert summary["result"] == "completed" and summary["level"] == "info"
    assert summary["subtitle"] == str(tmp_path / "Film.en.srt") and Path(summary["subtitle"]).is_file()
    assert summary["media_seconds"] == pytest.approx(media_duration(movie), abs=0.1)
    assert summary["rtf"] == pytest.approx(summary["processing_seconds"] / summary["media_seconds"], rel=0.01)
    assert (summary["language"], summary["target_language"], summary["task"]) == ("en", "en", "transcribe")
    assert (summary["model"], summary["device"], summary["attempt"]) == ("bundled:tiny.en", "cpu", 1)


async def test_the_service_writes_only_json_lines_and_a_failure_summary(tmp_path: Path) -> None:
    broken = tmp_path / "Broken.mkv"
    broken.write_text("this is not a video")
    db = Database(to_async_url(f"sqlite:///{tmp_path / 'engine.db'}"))
    await db.upgrade()
    job = (await JobQueue(db).enqueue(NewJob(source=Source.MANUAL, media_path=str(broken)))).job
    await db.close()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'engine.db'}",
        "WHISPER_MODEL": "bundled:tiny.en",
        "WHISPER_DEVICE": "cpu",
        "DATA_DIR": str(tmp_path / "data"),
        "MODEL_DIR": str(tmp_path / "models"),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "debug",
        "NODE_NAME": "test-node",
    }
    done = subprocess.run(
        [sys.executable, "-m", "transcriptarr", "run", "--once"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr  # --once exits 1 when a job failed
    lines = json_lines(done.stderr)
    assert lines[0]["event"] == "service_started" and lines[-1]["event"] == "service_stopped"
    assert isinstance(lines[0]["open_files"], int) and lines[0]["open_files"] > 0
    assert_job_lines_name_the_job(lines, job.id, broken)
    [summary] = [line for line in lines if line["event"] == "job_finished"]
    assert summary.keys() >= SUMMARY_FIELDS
    assert (summary["result"], summary["stage"], summary["level"]) == ("failed", "probing", "warning")
    assert summary["error"] and str(broken) in summary["error"] and summary["recorded"] is True
    assert summary["subtitle"] is None and summary["worker"] == "test-node/cpu/0"
