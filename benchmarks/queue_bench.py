"""Queue throughput: how many jobs per second one process can claim and complete, and
that no job is handed out twice while doing so.

    python benchmarks/queue_bench.py --backend sqlite|postgresql|mariadb
        [--jobs N (5000)] [--claimers C (8)] [--url URL]

It enqueues N no-op jobs through `JobQueue.enqueue` (C enqueuers at once), then C
claimer coroutines each claim one job, complete it and repeat until the queue is
empty. A job claimed more than once is a double claim; the database must also show
every job completed on its first attempt.

SQLite runs on a temporary file. PostgreSQL and MariaDB run, without --url, on a
throwaway server started by tests/servers.py in a temporary directory (tuned for
tests: no fsync), in a database created for the run; --url must name an empty
database. Transient database errors (e.g. a deadlock) are retried and counted.

Throughput depends on what else the machine is doing, so the CPU time spent per job
is printed too: by this process, and (Linux, throwaway server only) by the server.

The last line is machine-readable:
    RESULT backend=<b> jobs_per_s=<x> double_claims=<n> enqueue_per_s=<y> ...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import Connection, create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.exc import DBAPIError  # noqa: E402

from tests.servers import RunningServer, start_mariadb, start_postgres  # noqa: E402
from transcriptarr.db.database import Database  # noqa: E402
from transcriptarr.db.models import JobState, Source  # noqa: E402
from transcriptarr.queue.jobqueue import JOBS, JobQueue, NewJob  # noqa: E402
from transcriptarr.settings import to_async_url  # noqa: E402

T = TypeVar("T")
BENCH_DATABASE = "transcriptarr_bench"
MAX_RETRIES = 1000  # per call; MariaDB claims can deadlock many times in a row


@dataclass(frozen=True)
class Target:
    url: str  # user-style
    server_dir: Path | None = None  # set when we started the server ourselves


@dataclass
class Run:
    """What the claimers saw."""

    claims: Counter[int] = field(default_factory=Counter)
    refused: int = 0  # complete() said we no longer owned the job
    retried: Counter[str] = field(default_factory=Counter)  # transient errors, by operation

    async def retrying(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one queue call; a database error (deadlock, serialization) rolls back, so try again."""
        for _ in range(MAX_RETRIES):
            try:
                return await operation()
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise
                self.retried[f"{what}: {str(exc.orig).splitlines()[0][:80]}"] += 1
        return await operation()


def server_cpu_seconds(server_dir: Path | None) -> float | None:
    """CPU time used so far by the server processes living in `server_dir` (and their children)."""
    proc = Path("/proc")
    if server_dir is None or not proc.is_dir():
        return None
    marker, ticks = str(server_dir).encode(), os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent pid, cpu seconds)
    roots = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
        if marker in cmdline:
            roots.add(int(entry.name))
    return sum(cpu for pid, (parent, cpu) in stats.items() if pid in roots or parent in roots)


@contextmanager
def database(backend: str, url: str | None, workdir: Path) -> Iterator[Target]:
    """An empty database for the run, on a throwaway server if needed."""
    if url is not None:
        yield Target(url)
        return
    if backend == "sqlite":
        yield Target(f"sqlite:///{workdir / 'bench.db'}")
        return
    started = time.perf_counter()
    server: RunningServer = start_postgres(workdir) if backend == "postgresql" else start_mariadb(workdir)
    try:
        print(f"started a throwaway {backend} server in {time.perf_counter() - started:.1f} s")
        admin_url = make_url(server.url)
        if backend == "postgresql":
            admin_url = admin_url.set(drivername="postgresql+psycopg2")
        engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {BENCH_DATABASE}"))
        engine.dispose()
        url = make_url(server.url).set(database=BENCH_DATABASE).render_as_string(hide_password=False)
        yield Target(url, server.base_dir)
    finally:
        server.stop()


async def enqueue_all(queue: JobQueue, jobs: int, concurrency: int, run: Run) -> list[int]:
    numbers = iter(range(jobs))

    async def enqueuer() -> list[int]:
        ids = []
        for i in numbers:
            new = NewJob(source=Source.SCAN, media_path=f"/bench/{i}.mkv")
            result = await run.retrying("enqueue", partial(queue.enqueue, new))
            ids.append(result.job.id)
        return ids

    async with asyncio.TaskGroup() as group:  # one failing stops the others
        batches = [group.create_task(enqueuer()) for _ in range(concurrency)]
    return [job_id for batch in batches for job_id in batch.result()]


async def drain(queue: JobQueue, claimers: int, run: Run) -> None:
    async def claimer(worker: str) -> None:
        while jobs := await run.retrying("claim", partial(queue.claim, worker, "bench", 1)):
            for job in jobs:
                run.claims[job.id] += 1
                if not await run.retrying("complete", partial(queue.complete, job.id, worker)):
                    run.refused += 1

    async with asyncio.TaskGroup() as group:
        for i in range(claimers):
            group.create_task(claimer(f"bench/c{i}"))


def job_table(conn: Connection) -> tuple[int, Counter[tuple[str, int]]]:
    total = conn.execute(select(func.count()).select_from(JOBS)).scalar_one()
    rows = conn.execute(select(JOBS.c.state, JOBS.c.attempts, func.count()).group_by(JOBS.c.state, JOBS.c.attempts))
    return int(total), Counter({(str(state), int(attempts)): int(n) for state, attempts, n in rows})


async def bench(args: argparse.Namespace, target: Target) -> str:
    db = Database(to_async_url(target.url), pool_size=args.claimers)
    try:
        await db.upgrade()
        existing, _ = await db.read(job_table)
        if existing:
            raise SystemExit(f"the database already holds {existing} jobs; point --url at an empty one")
        queue = JobQueue(db)
        run = Run()

        started = time.perf_counter()
        job_ids = await enqueue_all(queue, args.jobs, args.claimers, run)
        enqueue_s = time.perf_counter() - started
        print(f"enqueued {len(job_ids)} jobs in {enqueue_s:.2f} s: {len(job_ids) / enqueue_s:.0f} jobs/s")

        load_before = os.getloadavg()[0]
        server_before = server_cpu_seconds(target.server_dir)
        started, cpu_started = time.perf_counter(), time.process_time()
        await drain(queue, args.claimers, run)
        drain_s, client_cpu = time.perf_counter() - started, time.process_time() - cpu_started
        server_after = server_cpu_seconds(target.server_dir)
        claimed = sum(run.claims.values())
        rate = claimed / drain_s
        print(f"{args.claimers} claimers claimed and completed {claimed} jobs in {drain_s:.2f} s: {rate:.0f} jobs/s")
        cpu = f"CPU per job: this process {client_cpu / claimed * 1e6:.0f} µs"
        if server_before is not None and server_after is not None:
            cpu += f", the server {(server_after - server_before) / claimed * 1e6:.0f} µs"
        print(f"{cpu} ({os.cpu_count()} CPUs; 1-minute load average {load_before:.1f} before draining)")

        double_claims = sum(1 for times in run.claims.values() if times > 1)
        unclaimed = len(set(job_ids) - set(run.claims))
        _, table = await db.read(job_table)
        wrong = {key: n for key, n in table.items() if key != (JobState.COMPLETED, 1)}
        print(f"double claims: {double_claims}; never claimed: {unclaimed}; refused completions: {run.refused}")
        print(f"jobs by (state, attempts) in the database: {dict(table)}")
        for what, times in sorted(run.retried.items()):
            print(f"retried {times}x: {what}")
        problems = double_claims + unclaimed + run.refused + sum(wrong.values())
        print("OK" if problems == 0 else f"PROBLEMS: jobs not completed on exactly one attempt: {wrong}")
        return (
            f"RESULT backend={args.backend} jobs_per_s={rate:.0f} double_claims={double_claims}"
            f" enqueue_per_s={len(job_ids) / enqueue_s:.0f} jobs={args.jobs} claimers={args.claimers}"
            f" client_cpu_us_per_job={client_cpu / claimed * 1e6:.0f}"
            f" db_not_first_attempt={sum(wrong.values())} retries={sum(run.retried.values())}"
        )
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "mariadb"), required=True)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--claimers", type=int, default=8)
    parser.add_argument("--url", help="user-style URL of an empty database (default: a throwaway one)")
    args = parser.parse_args()
    if args.jobs < 1 or args.claimers < 1:
        parser.error("--jobs and --claimers must be at least 1")
    if args.url is not None and make_url(args.url).get_backend_name().replace("mysql", "mariadb") != args.backend:
        parser.error(f"--url is not a {args.backend} URL")
    with (
        tempfile.TemporaryDirectory(prefix="queue-bench-") as workdir,
        database(args.backend, args.url, Path(workdir)) as target,
    ):
        result = asyncio.run(bench(args, target))
    print(result)


if __name__ == "__main__":
    main()
