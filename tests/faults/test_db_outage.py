"""The database server stops for 30 s while the real service works through jobs (issue #7).

`python -m transcriptarr run` (HTTP on a loopback port, bundled tiny.en model) transcribes
a small library of real speech (tests/faults/chaos.py builds it) on a PostgreSQL or
MariaDB server of the test's own. While a job transcribes, the server is stopped for 30 s,
then started again. Meanwhile the service must say, once, as a warning naming the
database, that it is away and that it keeps retrying; HTTP must keep answering, `/health`
at once with 503 "degraded" and the reason; the job that finished during the outage
waits to store its result. Afterwards it must carry on by itself: every file transcribed
by exactly one completed job, no job failed, stuck or doubled, no crash, a clean stop.

About 45 s per backend (30 of them the outage).
"""

from __future__ import annotations

import json
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from tests.conftest import unavailable
from tests.faults.chaos import (
    ChaosReport,
    Library,
    ServiceRun,
    check_outcome,
    completed_paths,
    event_is,
    make_clips,
    service_env,
    sync_engine,
    wait_until_idle,
)
from tests.servers import RunningServer, ServerError, ensure_installed, start_mariadb, start_postgres
from transcriptarr.db.models import JobState
from transcriptarr.queue.jobqueue import JOBS

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 30.0
MEDIA_FILES = 4


@pytest.fixture(params=["postgresql", "mariadb"])
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """A server of this test's own: the session's shared one is not ours to stop.

    Not under tmp_path: a pytest session starting meanwhile (another checkout, say) makes
    /tmp/pytest-of-<user> private again, and PostgreSQL, running as its own OS user,
    could then not start again on its data directory in there.
    """
    kind = request.param
    problem = ensure_installed(kind)
    if problem:
        unavailable(f"{kind} server cannot run here: {problem}")
    with tempfile.TemporaryDirectory(prefix=f"transcriptarr-outage-{kind}-") as base:
        try:
            running = start_postgres(Path(base)) if kind == "postgresql" else start_mariadb(Path(base))
        except ServerError as exc:
            unavailable(f"{kind} server did not start: {exc}")
            raise
        try:
            yield running
        finally:
            running.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Answer:
    status: int
    seconds: float
    body: dict[str, object]


def ask(url: str) -> Answer:
    started = time.monotonic()
    response = requests.get(url, timeout=15)
    body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
    return Answer(response.status_code, time.monotonic() - started, body)


def log_lines(path: Path, event: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in path.read_bytes().splitlines() if line.startswith(b"{")]
    return [line for line in lines if line.get("event") == event]


def test_service_rides_out_a_30_second_database_outage(server: RunningServer, tmp_path: Path) -> None:
    library = Library(tmp_path / "library", make_clips(tmp_path / "clips"))
    for _ in range(MEDIA_FILES):
        library.add()
    port = free_port()
    env = service_env(server.url, library.root, tmp_path / "data", tmp_path / "models")
    # A lease shorter than the outage: the running job's lease runs out meanwhile, the harder case.
    env.update(HTTP_ENABLED="true", HTTP_HOST="127.0.0.1", HTTP_PORT=str(port), LEASE_SECONDS="10", MAX_RETRIES="3")
    logs = tmp_path / "logs"
    logs.mkdir()
    run = ServiceRun(env, tmp_path, logs / "run-001.jsonl")
    engine = sync_engine(server.url)
    base = f"http://127.0.0.1:{port}"
    try:
        assert run.wait_for(event_is("job_finished"), 120), "the first job never finished"
        assert run.wait_for(event_is("job_stage", stage="transcribing"), 60), "the second job never started"
        assert ask(f"{base}/health").status == 200

        server.stop()
        outage_ends = time.monotonic() + OUTAGE_SECONDS
        health: list[Answer] = []
        other: list[Answer] = []
        while time.monotonic() < outage_ends:  # polling through the whole outage, as a monitor would
            health.append(ask(f"{base}/health"))
            other.append(ask(f"{base}/openapi.json"))
            time.sleep(0.5)
        server.start()

        deadline = time.monotonic() + 120
        media = {str(path) for path in library.media()}
        while time.monotonic() < deadline and run.alive and not media <= completed_paths(engine):
            time.sleep(0.5)
        assert wait_until_idle(engine, run, 60), "the service did not finish the queue after the outage"
        assert ask(f"{base}/health").status == 200
        assert run.alive, "the service exited during or after the outage"
    finally:
        code = run.stop()
        engine.dispose()
    assert code == 0

    # HTTP answered all along; /health said at once what was wrong, and never hung on the database.
    assert all(answer.status == 200 for answer in other)
    degraded = [a for a in health if a.status == 503]
    assert degraded, [a.status for a in health]
    assert all(a.status in (200, 503) and a.seconds < 10 for a in health)
    assert health[-1].status == 503
    reason = degraded[-1].body
    assert reason["status"] == "degraded"
    database = reason["database"]
    assert isinstance(database, dict) and database["ok"] is False and database["error"]

    # The outage was told once, naming the database and saying that the service keeps retrying, and its end too.
    log_path = logs / "run-001.jsonl"
    (warning,) = log_lines(log_path, "database_unavailable")
    assert warning["level"] == "warning"
    assert f"{server.host}:{server.port}" in str(warning["database"])
    assert "retrying" in str(warning["hint"])
    assert log_lines(log_path, "database_available")
    assert not log_lines(log_path, "job_crashed")

    # Every file done by exactly one completed job; no job failed, stuck or doubled; no partial files.
    report = ChaosReport(kills=0, jobs=0, log_dir=logs)
    engine = sync_engine(server.url)
    try:
        check_outcome(report, library, engine, tmp_path / "data", logs)
        with engine.connect() as conn:
            states = [row.state for row in conn.execute(select(JOBS.c.state))]
    finally:
        engine.dispose()
    assert report.ok, report.problems()
    assert report.jobs == MEDIA_FILES
    assert JobState.FAILED not in states and JobState.CANCELLED not in states, states
