"""Nothing leaks: spool and work files of jobs that ended go at start-up and every few minutes; live ones stay.

The spool and work folders are filled as a crashed or long-running service leaves them: uploads of
cancelled, completed, failed and deleted jobs, partial uploads of a killed process, extracted audio of
killed attempts; beside them the files of live jobs and of an upload still being received.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from structlog.testing import capture_logs

from tests.acceptance.engine_harness import engine_settings
from tests.api.conftest import bazarr_jobs
from tests.api.live import BAZARR_HEADERS, LiveService
from tests.polling import eventually
from transcriptarr.db.database import Database
from transcriptarr.db.models import JobState, Source
from transcriptarr.queue.jobqueue import JobQueue, NewJob
from transcriptarr.queue.leftovers import JobFolders, remove_leftovers
from transcriptarr.queue.maintenance import keep_queue_healthy
from transcriptarr.queue.registry import WorkerRegistry
from transcriptarr.settings import to_async_url

TWO_HOURS_AGO = time.time() - 7200


@dataclass
class Filled:
    kept: list[Path] = field(default_factory=list)
    gone: list[Path] = field(default_factory=list)
    live_jobs: list[int] = field(default_factory=list)
    of_live_jobs: list[Path] = field(default_factory=list)
    sizes: dict[Path, int] = field(default_factory=dict)
    gone_bytes: int = 0
    gone_spool: int = 0
    gone_work: int = 0

    def put(self, path: Path, size: int, *, keep: bool, old: bool = False, live_job: bool = False) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        self.sizes[path] = size
        if old:
            os.utime(path, (TWO_HOURS_AGO, TWO_HOURS_AGO))
        if live_job:
            self.of_live_jobs.append(path)
        if keep:
            self.kept.append(path)
        else:
            self.gone.append(path)
            self.gone_bytes += size
            if path.parent.name == "spool":
                self.gone_spool += 1
            else:
                self.gone_work += 1
        return path


def upload_name() -> str:
    return f"upload-{uuid.uuid4().hex}"


async def fill(queue: JobQueue, folders: JobFolders) -> Filled:
    """Jobs first, then their files: a sweep running meanwhile never sees a file before its job."""
    spool, work = folders.spool_dir, folders.work_dir
    names = {kind: upload_name() for kind in ("completed", "failed", "cancelled", "live", "elsewhere")}

    async def bazarr_job(kind: str, path: str | None = None) -> int:
        new = NewJob(source=Source.BAZARR, upload_path=path or str(spool / names[kind]), content_key=f"key-{kind}")
        return (await queue.enqueue(new)).job.id

    completed = await bazarr_job("completed")
    [claimed] = await queue.claim("w1", "node-1")
    await queue.complete(claimed.id, "w1", result_text="[]")
    failed = await bazarr_job("failed")
    [claimed] = await queue.claim("w1", "node-1")
    await queue.fail(claimed.id, "w1", "the audio is broken", permanent=True)
    cancelled = await bazarr_job("cancelled")
    await queue.cancel(cancelled)
    live = await bazarr_job("live")
    # Another node reaches the shared spool under another path: the name is what counts.
    elsewhere = await bazarr_job("elsewhere", f"/mnt/other-node/spool/{names['elsewhere']}")

    filled = Filled(live_jobs=[live, elsewhere])
    filled.put(spool / names["completed"], 3_000, keep=False)
    filled.put(spool / names["failed"], 5_000, keep=False)
    filled.put(spool / names["cancelled"], 7_000, keep=False)  # cancelled while queued, seconds ago
    filled.put(spool / names["live"], 11_000, keep=True, old=True, live_job=True)  # queued for hours: still needed
    filled.put(spool / names["elsewhere"], 13_000, keep=True, old=True, live_job=True)
    filled.put(spool / upload_name(), 17_000, keep=False, old=True)  # its job was deleted long ago
    filled.put(spool / f"{upload_name()}.part", 19_000, keep=False, old=True)  # a killed process's partial
    filled.put(spool / f"{upload_name()}.part", 23_000, keep=True)  # being received right now
    filled.put(spool / upload_name(), 29_000, keep=True)  # received a moment ago, its job not queued yet
    filled.put(spool / "notes.txt", 31, keep=True)  # not ours
    filled.put(work / f"job-{live}.pcm", 37_000, keep=True, old=True, live_job=True)  # a killed attempt's audio
    filled.put(work / f"job-{cancelled}.pcm", 41_000, keep=False)
    filled.put(work / f"job-{completed}.pcm.part", 43_000, keep=False)
    checkpoint = work / f"job-{failed}-checkpoint"  # whatever a job keeps beside its audio, a folder too
    checkpoint.mkdir()
    (checkpoint / "segments.json").write_bytes(os.urandom(47_000))
    filled.gone.append(checkpoint)
    filled.gone_bytes += 47_000
    filled.gone_work += 1
    filled.put(work / "job-999999.pcm", 53_000, keep=False)  # no such job
    filled.put(work / "README", 59, keep=True)  # not ours
    return filled


def assert_swept(filled: Filled) -> None:
    assert [path.name for path in filled.gone if path.exists()] == []
    assert [path.name for path in filled.kept if not path.exists()] == []


def _service_env(tmp_path: Path, url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": str(tmp_path / "data"),
        "MODEL_DIR": str(tmp_path / "models"),
        "WHISPER_MODEL": "bundled:tiny.en",
        "WHISPER_DEVICE": "cpu",
        "LOG_FORMAT": "json",
        "NODE_NAME": "sweep-test",
        "HTTP_ENABLED": "false",
        "WORKERS": "0",  # the live jobs stay queued
    }


def _log_lines(path: Path) -> list[dict[str, object]]:
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{") and line.endswith("}")]


async def test_start_up_removes_what_ended_jobs_and_a_killed_process_left(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    db = Database(to_async_url(url))
    await db.upgrade()
    folders = JobFolders(spool_dir=tmp_path / "data" / "spool", work_dir=tmp_path / "data" / "work")
    try:
        filled = await fill(JobQueue(db), folders)
    finally:
        await db.close()
    log_path = tmp_path / "service.log"
    with log_path.open("ab") as log_file:
        service = subprocess.Popen(
            [sys.executable, "-m", "transcriptarr", "run"],
            env=_service_env(tmp_path, url),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    try:
        await eventually(
            lambda: any(line.get("event") == "service_started" for line in _log_lines(log_path)),
            "the service to start",
            timeout=60,
        )
        assert_swept(filled)
        lines = _log_lines(log_path)
        [removed] = [line for line in lines if line.get("event") == "leftovers_removed"]
        assert removed["when"] == "start-up"
        assert (removed["spool_files"], removed["work_files"]) == (filled.gone_spool, filled.gone_work)
        assert removed["bytes"] == filled.gone_bytes
        [started] = [line for line in lines if line.get("event") == "service_started"]
        assert started["removed_work_files"] == filled.gone_spool + filled.gone_work
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=60) == 0, log_path.read_text()[-3000:]


async def test_a_periodic_sweep_removes_files_of_jobs_as_they_end(database: Database, tmp_path: Path) -> None:
    """On SQLite, PostgreSQL and MariaDB (upload names are matched with an escaped LIKE)."""
    queue = JobQueue(database, lease_seconds=3)  # maintenance every second
    folders = JobFolders(spool_dir=tmp_path / "spool", work_dir=tmp_path / "work")
    stop = asyncio.Event()
    with capture_logs() as logs:
        maintenance = asyncio.create_task(
            keep_queue_healthy(
                queue,
                WorkerRegistry(database),
                stop,
                job_retention=timedelta(days=7),
                result_retention=timedelta(days=2),
                leftovers=folders,
                sweep_every=0,
            )
        )
        try:
            filled = await fill(queue, folders)
            await eventually(lambda: not any(path.exists() for path in filled.gone), "the periodic sweep", timeout=30)
            assert_swept(filled)

            # The live jobs end (cancelled while queued): their upload and audio go at a later sweep.
            for job_id in filled.live_jobs:
                await queue.cancel(job_id)
            ended = filled.of_live_jobs
            await eventually(lambda: not any(path.exists() for path in ended), "the sweep after the jobs ended", 30)
            assert [path.name for path in filled.kept if path not in ended and not path.exists()] == []
        finally:
            stop.set()
            await maintenance
    removed = [entry for entry in logs if entry["event"] == "leftovers_removed"]
    assert removed and {entry["when"] for entry in removed} == {"periodic"}
    assert sum(entry["bytes"] for entry in removed) == filled.gone_bytes + sum(filled.sizes[p] for p in ended)


def _multipart(boundary: str, audio: bytes) -> tuple[bytes, bytes]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="audio_file"; filename="audio_file"\r\n\r\n'
    ).encode()
    return head + audio[: len(audio) // 2], audio[len(audio) // 2 :] + f"\r\n--{boundary}--\r\n".encode()


async def test_an_upload_being_received_and_its_queued_job_keep_their_file(tmp_path: Path) -> None:
    """The service runs in a thread of its own (tests/api/live.py); this test's loop only polls."""
    settings = engine_settings(tmp_path, transcriptarr_mode="provider")
    folders = JobFolders.from_settings(settings)
    audio = bytes(64_000)  # two seconds of silence, s16le
    boundary = uuid.uuid4().hex
    first, rest = _multipart(boundary, audio)
    gate = threading.Event()
    answers: list[int] = []
    with LiveService(settings, workers=False, keepalive_seconds=1) as live:

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=120)
            conn.putrequest("POST", "/asr?task=transcribe&language=en&output=srt&encode=false")
            conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
            conn.putheader("Content-Length", str(len(first) + len(rest)))
            for name, value in BAZARR_HEADERS.items():
                conn.putheader(name, value)
            conn.endheaders()
            conn.send(first)
            gate.wait(60)  # the client is still sending
            conn.send(rest)
            answers.append(conn.getresponse().status)
            conn.close()

        sender = threading.Thread(target=client)
        sender.start()
        try:
            orphan = folders.spool_dir / f"{upload_name()}.part"
            orphan.write_bytes(b"left by a killed process")
            os.utime(orphan, (TWO_HOURS_AGO, TWO_HOURS_AGO))

            def receiving() -> list[Path]:
                return [path for path in folders.spool_dir.glob("upload-*.part") if path != orphan]

            await eventually(receiving, "the upload to reach the spool", timeout=30)
            live.call(lambda parts: remove_leftovers(parts.queue, folders, when="periodic"))
            assert not orphan.exists()
            assert receiving(), "the upload being received was removed"

            gate.set()
            await eventually(lambda: bazarr_jobs(live), "the upload's job", timeout=30)
            [job] = bazarr_jobs(live)
            assert job.state == JobState.QUEUED
            live.call(lambda parts: remove_leftovers(parts.queue, folders, when="periodic"))
            assert Path(str(job.upload_path)).exists(), "a queued job's upload was removed"

            live.call(lambda parts: parts.queue.cancel(job.id))
            sender.join(60)
            assert answers == [409]  # a cancelled job: the waiting client is told
            live.call(lambda parts: remove_leftovers(parts.queue, folders, when="periodic"))
            assert list(folders.spool_dir.iterdir()) == []
        finally:
            gate.set()
            sender.join(60)
