"""Several Transcriptarr nodes on one database, as real `transcriptarr` OS processes.

- PostgreSQL, two `worker` nodes: the one holding a job is killed with SIGKILL; the
  other finishes the job once its lease runs out, and `status` shows the dead node stale.
- PostgreSQL LISTEN/NOTIFY: a worker idle with a 60 s poll starts a job queued by
  another process at once, also after its listening connection was killed.
- SQLite: a second node is refused with a clear message (the lock dies with its holder:
  after a SIGKILL a new node starts); CLI commands work beside the running node.

Nothing waits a fixed time: every wait polls for its condition and fails at a deadline.
The real bundled tiny.en model transcribes short espeak-ng speech on one thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text, update

from tests.acceptance.engine_harness import SENTENCES, engine_settings, long_speech
from tests.api.live import LiveService
from tests.conftest import new_server_database
from tests.media_factory import speak
from tests.servers import RunningServer
from transcriptarr.db.database import Database
from transcriptarr.db.models import Job, JobState, Source
from transcriptarr.queue.jobqueue import JobQueue, NewJob
from transcriptarr.queue.registry import NODES, WorkerRegistry
from transcriptarr.queue.wakeups import APPLICATION_NAME
from transcriptarr.settings import to_async_url

# Seconds on the clock: run alone (`make test` runs `serial` tests after the rest).
pytestmark = [pytest.mark.slow, pytest.mark.serial]

REPO_ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE = 90.0
JOB_DEADLINE = 120.0
LEASE_SECONDS = 3  # short, so a dead node's job comes back quickly
POLL = 0.05
# Idle workers that look for jobs only once a minute on their own: a job that starts sooner was
# announced by PostgreSQL.
SLOW_POLL = "60"


@dataclass
class Node:
    """One `transcriptarr` process and its log (JSON lines)."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def events(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if f'"{event}"' in line:
                with_event = json.loads(line)
                if with_event.get("event") == event:
                    found.append(with_event)
        return found

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"node {self.name} exited with status {self.process.returncode}:\n{self.tail()}")


def node_env(tmp_path: Path, database_url: str, name: str, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATABASE_URL": database_url,
        "NODE_NAME": name,
        "DATA_DIR": str(tmp_path / name),
        "MODEL_DIR": str(tmp_path / "models"),
        "WHISPER_MODEL": "bundled:tiny.en",
        "WHISPER_DEVICE": "cpu",
        "WHISPER_THREADS": "1",
        "WORKERS": "1",
        "LEASE_SECONDS": str(LEASE_SECONDS),
        "RETRY_BACKOFF_SECONDS": "0",
        "SHUTDOWN_GRACE_SECONDS": "5",
        "LOG_FORMAT": "json",
        **extra,
    }


Start = Callable[..., Node]


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator[Start]:
    """Start `transcriptarr <args>` as node `name`; nodes still running at the end are killed."""
    started: list[Node] = []

    def start(name: str, database_url: str, *args: str, **env: str) -> Node:
        log = tmp_path / f"{name}.log"
        command = [sys.executable, "-m", "transcriptarr", *args]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=node_env(tmp_path, database_url, name, **env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        node = Node(name, process, log)
        started.append(node)
        return node

    yield start
    for node in started:
        if node.process.poll() is None:
            node.process.kill()
            node.process.wait(30)


async def until(condition: Callable[[], Any], what: str, timeout: float) -> Any:
    """Poll `condition` (sync or async) until it gives something true; return that, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(POLL)


async def started(node: Node) -> None:
    def ready() -> bool:
        node.check_alive()
        return bool(node.events("service_started"))

    await until(ready, f"node {node.name} to start", START_DEADLINE)


async def stopped(node: Node, *, expect: int = 0) -> None:
    deadline = time.monotonic() + JOB_DEADLINE
    while node.process.poll() is None:
        if time.monotonic() > deadline:
            pytest.fail(f"node {node.name} still running:\n{node.tail()}")
        await asyncio.sleep(POLL)
    assert node.process.returncode == expect, node.tail()


def cli(tmp_path: Path, database_url: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**node_env(tmp_path, database_url, "cli"), **extra}
    return subprocess.run(
        [sys.executable, "-m", "transcriptarr", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )


def status(tmp_path: Path, database_url: str) -> dict[str, Any]:
    done = cli(tmp_path, database_url, "status", "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.fixture
def pg_url(postgresql_server: RunningServer) -> str:
    return new_server_database(postgresql_server)


@pytest.fixture
async def queue(pg_url: str) -> AsyncIterator[JobQueue]:
    db = Database(to_async_url(pg_url))
    await db.upgrade()
    yield JobQueue(db, lease_seconds=LEASE_SECONDS)
    await db.close()


async def enqueue(queue: JobQueue, media: Path) -> int:
    result = await queue.enqueue(NewJob(source=Source.MANUAL, media_path=str(media)))
    assert result.created
    return result.job.id


async def test_a_killed_nodes_job_is_finished_by_the_other_node(
    queue: JobQueue, pg_url: str, start_node: Start, tmp_path: Path
) -> None:
    (tmp_path / "media").mkdir()
    speech = long_speech(tmp_path / "media", 6)  # about 25 s of speech: a job of some seconds
    nodes = {name: start_node(name, pg_url, "worker") for name in ("node-a", "node-b")}
    for node in nodes.values():
        await started(node)
    job_id = await enqueue(queue, speech)

    async def claimed() -> Job | None:
        job = await queue.get(job_id)
        return job if job.state == JobState.PROCESSING else None

    first = await until(claimed, "a node to take the job", JOB_DEADLINE)
    victim = nodes[first.node]
    survivor = next(node for node in nodes.values() if node is not victim)
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(30)

    async def completed() -> Job | None:
        survivor.check_alive()
        job = await queue.get(job_id)
        return job if job.state == JobState.COMPLETED else None

    job = await until(completed, f"{survivor.name} to finish the job after the lease ran out", JOB_DEADLINE)
    assert (job.node, job.attempts) == (survivor.name, 2)
    assert job.result_path and Path(job.result_path).is_file()
    assert [event["job_id"] for event in survivor.events("job_started")] == [job_id]

    def victim_stale() -> dict[str, Any] | None:
        shown = {node["name"]: node for node in status(tmp_path, pg_url)["nodes"]}
        return shown if shown[victim.name]["stale"] else None

    shown = await until(victim_stale, f"status to show {victim.name} stale", 60.0)
    assert shown[survivor.name]["stale"] is False
    assert shown[survivor.name]["role"] == "workers"
    assert [worker["state"] for worker in shown[survivor.name]["workers"]] == ["idle"]
    text_status = cli(tmp_path, pg_url, "status").stdout
    assert "nodes: 1 running, 1 stale" in text_status
    assert f"{victim.name}" in text_status and "STALE: no heartbeat for" in text_status

    # The API of any node shows them all (here: a service without workers of its own, on the same database).
    settings = engine_settings(tmp_path / "api", database_url=pg_url, lease_seconds=LEASE_SECONDS, workers=0)
    with LiveService(settings, workers=False) as api:
        answer = requests.get(f"{api.url}/api/status", timeout=30)
    assert answer.status_code == 200
    listed = {node["name"]: node for node in answer.json()["nodes"]}
    assert (listed[victim.name]["stale"], listed[survivor.name]["stale"]) == (True, False)
    assert [w["id"] for w in listed[survivor.name]["workers"]] == [f"{survivor.name}/cpu/0"]
    assert listed[survivor.name]["pid"] == survivor.process.pid

    survivor.process.send_signal(signal.SIGTERM)
    await stopped(survivor)
    assert [node["name"] for node in status(tmp_path, pg_url)["nodes"]] == [victim.name]


async def test_an_idle_worker_starts_a_job_queued_elsewhere_at_once(
    queue: JobQueue, pg_url: str, postgresql_server: RunningServer, start_node: Start, tmp_path: Path
) -> None:
    worker = start_node("listener", pg_url, "worker", QUEUE_POLL_SECONDS=SLOW_POLL)
    await started(worker)
    await until(lambda: worker.events("wakeups_listening"), "the worker to listen", START_DEADLINE)
    clips = [speak(SENTENCES[i], tmp_path / f"clip{i}.wav") for i in range(2)]

    async def latency(clip: Path) -> float:
        """Seconds from the commit of the job to its claim by the worker."""
        queued = time.monotonic()
        job_id = await enqueue(queue, clip)

        async def claimed() -> bool:
            worker.check_alive()
            return (await queue.get(job_id)).state != JobState.QUEUED

        await until(claimed, "the idle worker to take the job", 50.0)  # its own poll would take 60 s
        seconds = time.monotonic() - queued
        await until(lambda: _finished(queue, job_id), "the job to finish", JOB_DEADLINE)
        return seconds

    first = await latency(clips[0])

    admin = Database(to_async_url(postgresql_server.admin_url))
    try:
        async with admin.engine.connect() as conn:
            killed = await conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": APPLICATION_NAME},
            )
            assert killed.scalars().all() == [True]
    finally:
        await admin.close()
    await until(lambda: worker.events("wakeups_lost"), "the worker to notice", 30.0)
    await until(lambda: len(worker.events("wakeups_listening")) == 2, "the worker to listen again", 30.0)
    again = await latency(clips[1])
    print(f"claim latency: {first:.2f} s, after reconnecting {again:.2f} s")

    worker.process.send_signal(signal.SIGTERM)
    await stopped(worker)


async def _finished(queue: JobQueue, job_id: int) -> bool:
    return (await queue.get(job_id)).state in (JobState.COMPLETED, JobState.FAILED)


async def test_sqlite_serves_one_node(start_node: Start, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    first = start_node("first", url, "run", HTTP_ENABLED="false")
    await started(first)
    assert first.events("service_started")[0]["role"] == "discovery,workers"

    second = start_node("second", url, "worker")
    await stopped(second, expect=1)
    [refusal] = second.events("startup_failed")
    assert refusal["error"] == (
        f"another Transcriptarr node (first, pid {first.process.pid}) is using the SQLite database "
        f"{tmp_path / 'one.db'}; SQLite supports one node — use PostgreSQL or MariaDB (DATABASE_URL) to run several"
    )
    # The commands work beside the running node.
    shown = status(tmp_path, url)
    assert [(node["name"], node["stale"]) for node in shown["nodes"]] == [("first", False)]
    not_media = tmp_path / "notes.mkv"
    not_media.write_text("not a video: its job fails at once")
    queued = cli(tmp_path, url, "enqueue", str(not_media), LIBRARY_PATHS=str(tmp_path))  # only library files
    assert queued.returncode == 0 and "queued" in queued.stdout, queued.stderr

    # A lock dies with its holder: after a crash, the next node starts at once.
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(30)
    third = start_node("third", url, "worker")
    await started(third)
    third.process.send_signal(signal.SIGTERM)
    await stopped(third)


async def test_sqlite_refuses_a_live_node_of_another_host(start_node: Start, tmp_path: Path) -> None:
    """A database file on a network share: the lock may not reach the other host, the registry does."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    db = Database(to_async_url(url))
    try:
        await db.upgrade()
        await WorkerRegistry(db).register_node("nas", "api,discovery,workers", ("cpu",))
        async with db.engine.begin() as conn:
            await conn.execute(update(NODES).values(host="nas.lan", pid=4242))
    finally:
        await db.close()
    assert socket.gethostname() != "nas.lan"

    refused = start_node("gpu", url, "worker", "--once")
    await stopped(refused, expect=1)
    [refusal] = refused.events("startup_failed")
    assert refusal["error"].startswith("another Transcriptarr node (nas, pid 4242 on nas.lan) is using the SQLite")


async def test_a_second_node_with_the_same_name_is_refused(pg_url: str, start_node: Start) -> None:
    """Two live nodes with one NODE_NAME would share worker ids and requeue each other's jobs."""
    first = start_node("twin", pg_url, "worker")
    await started(first)

    second = start_node("twin", pg_url, "worker")
    await stopped(second, expect=1)
    [refusal] = second.events("startup_failed")
    assert refusal["error"].startswith("another node named 'twin' is running (host ")
    assert "give each node its own NODE_NAME" in refusal["error"]
    first.check_alive()


async def test_a_dead_predecessor_on_another_host_does_not_block_the_name(
    queue: JobQueue, pg_url: str, start_node: Start
) -> None:
    """A recreated container (new host name, same NODE_NAME) starts once the old row stops being renewed."""
    registry = WorkerRegistry(queue.db)
    await registry.register_node("gpu1", "workers", ("cpu",))
    async with queue.db.engine.begin() as conn:
        await conn.execute(update(NODES).values(host="old-container", pid=7))

    successor = start_node("gpu1", pg_url, "worker")
    await started(successor)
    assert successor.events("node_name_in_use_checking")


async def test_a_live_twin_on_another_host_is_refused(queue: JobQueue, pg_url: str, start_node: Start) -> None:
    registry = WorkerRegistry(queue.db)
    await registry.register_node("gpu2", "workers", ("cpu",))
    async with queue.db.engine.begin() as conn:
        await conn.execute(update(NODES).values(host="other-box", pid=7))
    renewing = asyncio.Event()

    async def keep_beating() -> None:  # what the live node on the other box does
        while not renewing.is_set():
            await registry.beat_node("gpu2")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(renewing.wait(), LEASE_SECONDS / 3)

    beating = asyncio.create_task(keep_beating())
    try:
        twin = start_node("gpu2", pg_url, "worker")
        await stopped(twin, expect=1)
    finally:
        renewing.set()
        await beating
    [refusal] = twin.events("startup_failed")
    assert refusal["error"].startswith("another node named 'gpu2' is running (host other-box, pid 7)")
