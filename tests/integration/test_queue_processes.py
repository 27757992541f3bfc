"""The queue's guarantees hold across OS processes, on SQLite, PostgreSQL and MariaDB.

- Concurrency: three processes with four claimers each, released at the same moment,
  drain a few thousand jobs; every job is claimed exactly once across all of them
  and completed on its first attempt.
- Crash: a process killed with SIGKILL while holding claimed jobs loses none: once
  its lease runs out they are queued again, and a second process completes each of
  them exactly once (their second attempt).

The worker processes are `tests/integration/queue_drainer.py`. Nothing here waits a
fixed time: every wait polls for its condition and fails at a deadline.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select

from tests.integration.queue_drainer import READY, STARTED
from transcriptarr.db.database import Database
from transcriptarr.db.models import JobState, Source
from transcriptarr.queue.jobqueue import JOBS, JobQueue, NewJob

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
JOBS_TO_DRAIN = 2000
PROCESSES = 3
CLAIMERS_PER_PROCESS = 4
DRAIN_DEADLINE = 120.0
START_DEADLINE = 60.0
POLL_SECONDS = 0.05


@dataclass
class Drainer:
    """One queue_drainer OS process and the files it writes."""

    process: asyncio.subprocess.Process
    out: Path
    log: Path

    def lines(self) -> list[str]:
        return self.out.read_text().splitlines() if self.out.exists() else []

    def claimed(self) -> list[int]:
        return [int(line) for line in self.lines() if line not in (STARTED, READY)]

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process.returncode is not None:
            pytest.fail(f"drainer exited early with status {self.process.returncode}:\n{self.log_tail()}")


Spawn = Callable[..., Awaitable[Drainer]]


@pytest.fixture
async def spawn(db_url: str, tmp_path: Path) -> AsyncIterator[Spawn]:
    """Start drainer processes on the test's database; any still running at the end are killed."""
    started: list[Drainer] = []

    async def start(name: str, *options: str, claimers: int = CLAIMERS_PER_PROCESS) -> Drainer:
        out, log = tmp_path / f"{name}.ids", tmp_path / f"{name}.log"
        with log.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.integration.queue_drainer",
                *("--url", db_url, "--claimers", str(claimers), "--out", str(out), *options),
                cwd=REPO_ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
        drainer = Drainer(process, out, log)
        started.append(drainer)
        return drainer

    yield start
    for drainer in started:
        if drainer.process.returncode is None:
            drainer.process.kill()
            await drainer.process.wait()


async def until(condition: Callable[[], bool | Awaitable[bool]], what: str, timeout: float) -> None:
    """Poll `condition` until it holds; fail, saying `what` was awaited, at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)


async def finished(drainer: Drainer, timeout: float) -> None:
    try:
        await asyncio.wait_for(drainer.process.wait(), timeout)
    except TimeoutError:
        pytest.fail(f"drainer still running after {timeout:.0f} s:\n{drainer.log_tail()}")
    assert drainer.process.returncode == 0, f"drainer failed:\n{drainer.log_tail()}"


async def enqueue_many(queue: JobQueue, count: int, *, concurrency: int = 8) -> list[int]:
    numbers = iter(range(count))

    async def enqueuer() -> list[int]:
        ids = []
        for i in numbers:
            result = await queue.enqueue(NewJob(source=Source.SCAN, media_path=f"/media/p{i}.mkv"))
            assert result.created
            ids.append(result.job.id)
        return ids

    batches = await asyncio.gather(*(enqueuer() for _ in range(concurrency)))
    return sorted(job_id for batch in batches for job_id in batch)


async def job_rows(db: Database) -> dict[int, Any]:
    def read(conn: Connection) -> dict[int, Any]:
        rows = conn.execute(select(JOBS.c.id, JOBS.c.state, JOBS.c.attempts, JOBS.c.worker)).all()
        return {row.id: row for row in rows}

    return await db.read(read)


def owner(worker: str | None) -> str:
    """The drainer process (`drainer-<pid>`) that a worker name belongs to."""
    return (worker or "").split("/")[0]


async def test_processes_claim_every_job_exactly_once(queue: JobQueue, spawn: Spawn, tmp_path: Path) -> None:
    job_ids = await enqueue_many(queue, JOBS_TO_DRAIN)
    go = tmp_path / "go"
    drainers = [await spawn(f"drainer{n}", "--wait-for", str(go)) for n in range(PROCESSES)]

    def all_started() -> bool:
        for drainer in drainers:
            drainer.check_alive()
        return all(STARTED in drainer.lines() for drainer in drainers)

    await until(all_started, "every drainer to connect", START_DEADLINE)
    go.touch()  # release all processes together, so they really compete
    for drainer in drainers:
        await finished(drainer, DRAIN_DEADLINE)

    per_process = [drainer.claimed() for drainer in drainers]
    claims = Counter(job_id for claimed in per_process for job_id in claimed)
    assert sorted(claims) == job_ids
    assert [job_id for job_id, times in claims.items() if times != 1] == []
    assert all(per_process), f"a process claimed nothing: {[len(c) for c in per_process]}"

    rows = await job_rows(queue.db)
    assert sorted(rows) == job_ids
    assert Counter(row.state for row in rows.values()) == {JobState.COMPLETED: JOBS_TO_DRAIN}
    assert Counter(row.attempts for row in rows.values()) == {1: JOBS_TO_DRAIN}


async def test_jobs_of_a_killed_process_are_completed_once_by_another(queue: JobQueue, spawn: Spawn) -> None:
    job_ids = await enqueue_many(queue, 10)
    holder = await spawn("holder", "--hold", "--lease", "2", claimers=4)

    def holding() -> bool:
        holder.check_alive()
        return READY in holder.lines()

    await until(holding, "the holder to claim its jobs", START_DEADLINE)
    held = holder.claimed()
    assert len(held) == 4 and len(set(held)) == 4

    holder.process.send_signal(signal.SIGKILL)
    await asyncio.wait_for(holder.process.wait(), START_DEADLINE)
    assert holder.process.returncode == -signal.SIGKILL

    rows = await job_rows(queue.db)  # still claimed by the dead process
    assert {(rows[job_id].state, owner(rows[job_id].worker)) for job_id in held} == {
        (JobState.PROCESSING, f"drainer-{holder.process.pid}")
    }

    recovered = 0

    async def all_recovered() -> bool:
        nonlocal recovered
        recovered += await queue.recover_expired()
        return recovered >= len(held)

    await until(all_recovered, "the dead holder's leases to expire", 30.0)
    assert recovered == len(held)

    rescuer = await spawn("rescuer")
    await finished(rescuer, DRAIN_DEADLINE)

    rescued = Counter(rescuer.claimed())
    assert sorted(rescued) == job_ids  # the held jobs and the ones nobody had claimed yet
    assert set(rescued.values()) == {1}

    rows = await job_rows(queue.db)
    assert {row.state for row in rows.values()} == {JobState.COMPLETED}
    assert {job_id: rows[job_id].attempts for job_id in held} == dict.fromkeys(held, 2)
    assert {rows[job_id].attempts for job_id in set(job_ids) - set(held)} == {1}
    assert {owner(rows[job_id].worker) for job_id in held} == {f"drainer-{rescuer.process.pid}"}
