"""The database stalls for longer than a lease while the real service works (issue 15, part 4).

A stall is not an outage: the connections stay open and nothing answers. PostgreSQL is a
server of the test's own, frozen with SIGSTOP (postmaster and backends); SQLite's write
lock is held by another process (`BEGIN IMMEDIATE`). `python -m transcriptarr run` (bundled
tiny.en, HTTP on a loopback port, LEASE_SECONDS of a few seconds) transcribes real speech
meanwhile. Shown:

- the node never takes its own live job for a dead one: the job running when the stall
  began is not requeued ("lease expired"), its attempt is not counted, and its result,
  finished during the stall, is stored once the database answers (completed, one subtitle
  write, one attempt);
- every route answers within a bound during the stall: the status views with their last
  answer marked stale, the control API, Bazarr's `/asr` and OpenAI's route with a 503 in
  their own error shapes, `/health` with "degraded";
- SIGTERM ends the process within SHUTDOWN_GRACE_SECONDS while the database hangs; a second
  signal hands the running job back at once; what a stop could not store is recovered by the
  next start.

About 70 s in all (PostgreSQL ~45, SQLite ~25).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.engine import Engine

from tests.faults.chaos import Event, ServiceRun, event_is, service_env, sync_engine
from tests.faults.frozen_postgres import freeze, thaw
from tests.media_factory import concat_audio, make_video, speak
from tests.polling import keep_up_until, wait_until
from tests.servers import RunningServer
from transcriptarr.api.stall import REQUEST_DATABASE_SECONDS, SNAPSHOT_SECONDS
from transcriptarr.db.models import JobState
from transcriptarr.queue.jobqueue import JOBS
from transcriptarr.shutdown import HAND_BACK_RESERVE_SECONDS, StopBudget

pytestmark = pytest.mark.slow

LEASE_SECONDS = 4.0
GRACE_SECONDS = 6.0
STOP = StopBudget(GRACE_SECONDS)  # jobs get 3 s of it, the hand-back the other 3
STALL_SECONDS = 3 * LEASE_SECONDS  # well past a lease: the heartbeats could not be written meanwhile
# What "within a bound" means for a client: the bound of the database part, plus a loaded machine's slack.
ANSWER_WITHIN = REQUEST_DATABASE_SECONDS + 4.0
SNAPSHOT_WITHIN = SNAPSHOT_SECONDS + 3.0
EXIT_SLACK = 2.0  # a loaded machine's delay between the deadline and the exit (interpreter exit, log flush)


# --------------------------------------------------------------------------- fixtures and helpers


@dataclass(frozen=True)
class Answer:
    status: int
    seconds: float
    body: bytes
    content_type: str
    headers: dict[str, str]

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def ask(method: str, url: str, **kwargs: Any) -> Answer:
    started = time.monotonic()
    response = requests.request(method, url, timeout=ANSWER_WITHIN + 10, **kwargs)
    seconds = time.monotonic() - started
    return Answer(
        response.status_code,
        seconds,
        response.content,
        response.headers.get("Content-Type", ""),
        dict(response.headers),
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def speech_video(folder: Path, name: str, sentences: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    parts = [speak(line, folder / f"{name}-{i}.wav") for i, line in enumerate(sentences)]
    audio = concat_audio(folder / f"{name}.wav", parts)
    return make_video(folder / f"{name}.mkv", [(audio, "eng", True)])


def put_in_library(clip: Path, library: Path) -> Path:
    """Copied under a hidden name, then renamed: the watcher never sees it half-written."""
    dest = library / clip.name
    tmp = library / f".{clip.name}.copying"
    tmp.write_bytes(clip.read_bytes())
    tmp.replace(dest)
    return dest


def job_row(engine: Engine, media: Path) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(JOBS).where(JOBS.c.media_path == str(media)).order_by(JOBS.c.id.desc())).first()


def events_in(log: Path, name: str) -> list[Event]:
    import json

    found = []
    for raw in log.read_bytes().splitlines():
        with contextlib.suppress(ValueError):
            line = json.loads(raw)
            if isinstance(line, dict) and line.get("event") == name:
                found.append(line)
    return found


def exits_within(run: ServiceRun, seconds: float) -> tuple[int, float]:
    """(exit status, seconds it took); fails if the process is still there after `seconds`."""
    started = time.monotonic()
    try:
        code = run.process.wait(seconds)
    except subprocess.TimeoutExpired:
        run.kill()
        pytest.fail(f"the service was still running {seconds:g} s after the stop signal")
    took = time.monotonic() - started
    run._reader.join(10)  # its last log lines are in the file
    return code, took


def signal_service(run: ServiceRun, sig: signal.Signals) -> None:
    os.kill(run.process.pid, sig)  # the service only, as `docker stop` signals PID 1


# --------------------------------------------------------------------------- what a client sees during the stall


def http_during_stall(base: str) -> dict[str, list[Answer]]:
    """Every kind of route, asked at once while the database stalls; status views until they say stale."""
    pcm = b"\0\0" * 16_000  # one second of silence, s16le mono 16 kHz
    one_shot: dict[str, Callable[[], Answer]] = {
        "health": lambda: ask("GET", f"{base}/health"),
        "jobs": lambda: ask("GET", f"{base}/api/jobs"),
        "asr": lambda: ask(
            "POST", f"{base}/asr?task=transcribe&language=en&output=srt&encode=false", files={"audio_file": pcm}
        ),
        "openai": lambda: ask(
            "POST", f"{base}/v1/audio/transcriptions", files={"file": ("a.wav", pcm)}, data={"model": "whisper-1"}
        ),
    }

    def until_stale(path: str) -> list[Answer]:
        answers = [ask("GET", f"{base}{path}")]
        deadline = time.monotonic() + 3 * ANSWER_WITHIN
        while answers[-1].status == 200 and "Age" not in answers[-1].headers and time.monotonic() < deadline:
            answers.append(ask("GET", f"{base}{path}"))
        return answers

    with ThreadPoolExecutor(8) as pool:
        asked = {name: pool.submit(call) for name, call in one_shot.items()}
        views = {path: pool.submit(until_stale, path) for path in ("/", "/api/status", "/metrics")}
        answers = {name: [future.result()] for name, future in asked.items()}
        answers.update({path: future.result() for path, future in views.items()})
    return answers


def check_http_during_stall(answers: dict[str, list[Answer]]) -> None:
    for name, seen in answers.items():
        bound = SNAPSHOT_WITHIN if name.startswith("/") else ANSWER_WITHIN
        assert all(answer.seconds < bound for answer in seen), (name, [round(a.seconds, 1) for a in seen])
    (health,) = answers["health"]
    assert health.status == 503 and health.json()["status"] == "degraded", health.body
    (jobs,) = answers["jobs"]
    assert jobs.status == 503 and "did not answer" in jobs.json()["error"], jobs.body
    (asr,) = answers["asr"]  # Bazarr's shape: a text body that never parses as a subtitle
    assert asr.status == 503 and asr.body.startswith(b"ERROR: ") and b"did not answer" in asr.body, asr.body
    (openai,) = answers["openai"]  # OpenAI's error object
    error = openai.json()["error"]
    assert openai.status == 503 and error["type"] == "server_error" and "did not answer" in error["message"]

    status = answers["/api/status"][-1]
    assert status.status == 200 and "Age" in status.headers, status.body[:200]
    report = status.json()
    assert report["stale"] is True and report["stale_seconds"] > 0 and "does not answer" in report["stale_reason"]
    page = answers["/"][-1]
    assert page.status == 200 and b'id="stale"' in page.body and b"Not current" in page.body
    metrics = answers["/metrics"][-1]
    assert metrics.status == 200 and b"\ntranscriptarr_stale_seconds " in metrics.body


# --------------------------------------------------------------------------- PostgreSQL, frozen


def test_postgresql_frozen_longer_than_a_lease(own_postgres: RunningServer, tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    short = speech_video(clips, "short", ["The quick brown fox jumps over the lazy dog."])
    long = speech_video(
        clips,
        "long",
        [
            "Rivers carry water from the mountains all the way down to the sea.",
            "Good morning, the train to the city leaves at nine o'clock sharp.",
            "The children played football in the park until the sun went down.",
            "He wrote a long letter to his brother who lives across the ocean.",
        ],
    )
    library = tmp_path / "library"
    library.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(own_postgres.url, library, tmp_path / "data", tmp_path / "models")
    env.update(
        TRANSCRIPTARR_MODE="standalone,provider",
        HTTP_ENABLED="true",
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(port),
        LEASE_SECONDS=str(LEASE_SECONDS),
        SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
        MAX_RETRIES="1",  # a lease wrongly judged expired would count an attempt: attempts shows it
        WHISPER_EXTRA_ARGS='{"temperature": 0.0}',
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    engine = sync_engine(own_postgres.url)
    first = ServiceRun(env, tmp_path, logs / "run-1.jsonl")
    try:
        assert first.wait_for(event_is("http_listening"), 90), "the service did not start"
        for path in ("/", "/api/status", "/metrics"):  # the views' answers to fall back on
            assert ask("GET", f"{base}{path}").status == 200

        # 1. The job running when the database froze: its result waits, then is stored; it stays its job.
        media = put_in_library(short, library)
        assert first.wait_for(event_is("job_stage", stage="transcribing"), 60), "the job never started"
        freeze(own_postgres)
        frozen_at = time.monotonic()
        try:
            answers = http_during_stall(base)
            keep_up_until(frozen_at, STALL_SECONDS)  # the stall outlasts leases
        finally:
            thaw(own_postgres)
        check_http_during_stall(answers)
        done = first.wait_for(event_is("job_finished", path=str(media)), 60)
        assert done is not None and done["result"] == "completed" and done["recorded"] is True, done
        job = job_row(engine, media)
        assert (job.state, job.attempts) == (JobState.COMPLETED, 1), (job.state, job.attempts, job.error)
        wait_until(lambda: ask("GET", f"{base}/health").status == 200, "/health to be ok again", 20)

        # 2. SIGTERM while the database hangs: out within the grace.
        second_media = put_in_library(long, library)
        assert first.wait_for(event_is("job_stage", stage="transcribing"), 60), "the second job never started"
        freeze(own_postgres)
        try:
            signal_service(first, signal.SIGTERM)
            code, took = exits_within(first, STOP.exit_within_seconds + EXIT_SLACK)
        finally:
            thaw(own_postgres)
        assert code == 0, first.log_path.read_text()[-3000:]
        assert took >= STOP.jobs_seconds - 0.5  # the running job had its time to finish
    finally:
        if first.alive:
            first.kill()
    log = logs / "run-1.jsonl"
    assert not events_in(log, "jobs_recovered"), events_in(log, "jobs_recovered")
    assert not events_in(log, "job_lease_lost") and not events_in(log, "job_lost_lease")
    assert [e["path"] for e in events_in(log, "subtitle_written")].count(str(media)) == 1
    assert events_in(log, "shutdown_forced")  # the watchdog ended what the hung database held up

    # 3. The next start takes the job back at once; a second signal hands it back at once.
    env_hurried = {**env, "SHUTDOWN_GRACE_SECONDS": "60"}
    second = ServiceRun(env_hurried, tmp_path, logs / "run-2.jsonl")
    try:
        assert second.wait_for(event_is("job_stage", stage="transcribing"), 90), "the job was not taken back"
        signal_service(second, signal.SIGTERM)
        assert second.wait_for(event_is("workers_stopping"), 10)
        signal_service(second, signal.SIGINT)
        code, took = exits_within(second, HAND_BACK_RESERVE_SECONDS + EXIT_SLACK)
    finally:
        if second.alive:
            second.kill()
    assert code == 0 and took < HAND_BACK_RESERVE_SECONDS + EXIT_SLACK
    log = logs / "run-2.jsonl"
    # Handed back first (its runner may still be decoding a window; a forced exit after that loses nothing).
    assert events_in(log, "shutdown_hurried")
    handed_back = job_row(engine, second_media)
    assert handed_back.state in (JobState.QUEUED, JobState.COMPLETED), handed_back.state  # done just before: fine
    released = [e for e in events_in(log, "job_finished") if e["result"] == "released"]
    if handed_back.state == JobState.QUEUED:
        assert released and released[0]["recorded"] is True, released
        assert handed_back.attempts == 1  # the hurried attempt is not counted (run 1's, cut by its stop, is)

    # 4. A calm start finishes it.
    third = ServiceRun(env, tmp_path, logs / "run-3.jsonl")
    try:
        wait_until(lambda: job_row(engine, second_media).state == JobState.COMPLETED, "the second job to complete", 90)
        code = third.stop()
    finally:
        if third.alive:
            third.kill()
        engine.dispose()
    assert code == 0
    assert second_media.with_suffix(".en.srt").is_file() or list(library.glob("long*.srt")), list(library.iterdir())


# --------------------------------------------------------------------------- SQLite, write lock held elsewhere

# Takes the write lock, says so, keeps it until a line arrives on stdin (or 60 s pass).
HOLDER = """
import select, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
select.select([sys.stdin], [], [], 60)
conn.execute("COMMIT")
print("released", flush=True)
"""


@contextlib.contextmanager
def write_lock_held(database: Path) -> Iterator[None]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(database)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == b"locked\n"
        yield
        holder.stdin.write(b"release\n")
        holder.stdin.flush()
        assert holder.stdout.readline() == b"released\n"
    finally:
        holder.kill()
        holder.wait(10)


def test_sqlite_write_lock_held_longer_than_a_lease(tmp_path: Path) -> None:
    short = speech_video(tmp_path / "clips", "short", ["Good morning, the train to the city leaves at nine."])
    library = tmp_path / "library"
    library.mkdir()
    database = tmp_path / "queue.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(f"sqlite:///{database}", library, tmp_path / "data", tmp_path / "models")
    env.update(
        HTTP_ENABLED="true",
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(port),
        LEASE_SECONDS=str(LEASE_SECONDS),
        SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
        MAX_RETRIES="0",  # a lease wrongly judged expired would fail the job for good
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    run = ServiceRun(env, tmp_path, logs / "run.jsonl")
    engine = sync_engine(f"sqlite:///{database}")
    try:
        assert run.wait_for(event_is("http_listening"), 90), "the service did not start"
        media = put_in_library(short, library)
        assert run.wait_for(event_is("job_stage", stage="transcribing"), 60), "the job never started"
        with write_lock_held(database):
            locked_at = time.monotonic()
            posted = ask("POST", f"{base}/api/jobs", json={"path": str(media)})  # a write: bounded, 503
            health = ask("GET", f"{base}/health")
            keep_up_until(locked_at, STALL_SECONDS)  # the lock is held longer than leases
        assert posted.status == 503 and posted.seconds < ANSWER_WITHIN, (posted.status, posted.seconds, posted.body)
        assert "did not answer" in posted.json()["error"]
        assert health.status == 503 and health.json()["database"]["state"] == "degraded", health.body

        done = run.wait_for(event_is("job_finished", path=str(media)), 60)
        assert done is not None and done["result"] == "completed" and done["recorded"] is True, done
        job = job_row(engine, media)
        assert (job.state, job.attempts) == (JobState.COMPLETED, 1), (job.state, job.attempts, job.error)

        # SIGTERM while another process holds the lock: the stop's writes wait on it, the process does not.
        with write_lock_held(database):
            ask("GET", f"{base}/api/status")  # nothing to wait for: reads go on (WAL)
            signal_service(run, signal.SIGTERM)
            code, _ = exits_within(run, STOP.exit_within_seconds + EXIT_SLACK)
        assert code == 0
    finally:
        if run.alive:
            run.kill()
        engine.dispose()
    log = logs / "run.jsonl"
    assert not events_in(log, "jobs_recovered") and not events_in(log, "job_lease_lost")
    assert [e["path"] for e in events_in(log, "subtitle_written")].count(str(media)) == 1
