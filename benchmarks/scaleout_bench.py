"""Scale-out: jobs per minute with 1, 2 and 3 `transcriptarr worker` processes on one PostgreSQL database.

    python benchmarks/scaleout_bench.py [--clips 12] [--max-workers 3]

It starts a throwaway PostgreSQL server (tests/servers.py, tuned for tests: no fsync) and
makes --clips short spoken clips (espeak-ng, about 3-5 s each). Then, for N = 1, 2, 3:
a fresh database and a fresh copy of the clips; N `transcriptarr worker` processes, each
its own node (WORKERS=1, WHISPER_THREADS=1, the bundled tiny.en model on the CPU); once
every worker listens for jobs, one warm-up job per worker (each loads its model; not
timed); then every clip is queued at once, and the run is timed from the first job queued
to the last one finished (the database's own timestamps).

Exactly once: every job must end completed on its first attempt, be started once and
finished once in all the workers' logs together (`job_started`, `job_finished`), and
have its subtitle on disk. Any job that is not counts in double_processed (exit status 1).

The test machine has 2 CPU cores: with 3 worker processes of one thread each, the third
has no core of its own (and the database server and this process share them too), so 3
workers are not expected to beat 2 there. On a real scale-out each worker has its own
machine or GPU.

The last line is machine-readable:
    RESULT workers1_jobs_per_min=<x> workers2_jobs_per_min=<y> workers3_jobs_per_min=<z> double_processed=<n>
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from tests.acceptance.engine_harness import SENTENCES  # noqa: E402
from tests.media_factory import speak  # noqa: E402
from tests.servers import RunningServer, start_postgres  # noqa: E402
from transcriptarr.db.database import Database  # noqa: E402
from transcriptarr.db.models import Job, JobState, Source  # noqa: E402
from transcriptarr.queue.jobqueue import JobQueue, NewJob  # noqa: E402
from transcriptarr.settings import to_async_url  # noqa: E402

START_DEADLINE = 120.0
RUN_DEADLINE = 900.0
POLL_SECONDS = 0.1


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def events(self, event: str) -> list[dict[str, object]]:
        lines = self.log.read_text(errors="replace").splitlines()
        parsed = (json.loads(line) for line in lines if f'"{event}"' in line and line.startswith("{"))
        return [entry for entry in parsed if entry.get("event") == event]

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
            raise SystemExit(f"worker {self.name} exited with status {self.process.returncode}:\n{tail}")


@dataclass
class Round:
    workers: int
    jobs: int
    seconds: float
    double_processed: int

    @property
    def jobs_per_min(self) -> float:
        return self.jobs / self.seconds * 60


def new_database(server: RunningServer, name: str) -> str:
    admin = make_url(server.url).set(drivername="postgresql+psycopg2")
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return make_url(server.url).set(database=name).render_as_string(hide_password=False)


def make_clips(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True)
    return [speak(SENTENCES[i % len(SENTENCES)], folder / f"clip{i:02d}.wav") for i in range(count)]


def start_worker(workdir: Path, url: str, name: str) -> WorkerProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "DATABASE_URL": url,
        "NODE_NAME": name,
        "DATA_DIR": str(workdir / name),
        "MODEL_DIR": str(workdir / "models"),
        "WHISPER_MODEL": "bundled:tiny.en",
        "WHISPER_DEVICE": "cpu",
        "WHISPER_THREADS": "1",
        "WORKERS": "1",
        "LOG_FORMAT": "json",
    }
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "transcriptarr", "worker"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    return WorkerProcess(name, process, log)


@contextmanager
def running(workers: list[WorkerProcess]) -> Iterator[list[WorkerProcess]]:
    try:
        yield workers
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.process.wait(60)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()


async def wait_for(queue: JobQueue, job_ids: list[int], workers: list[WorkerProcess], what: str) -> list[Job]:
    deadline = time.monotonic() + RUN_DEADLINE
    while True:
        jobs = [await queue.get(job_id) for job_id in job_ids]
        if all(job.state not in (JobState.QUEUED, JobState.PROCESSING) for job in jobs):
            return jobs
        for worker in workers:
            worker.check_alive()
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)


async def enqueue(queue: JobQueue, media: list[Path]) -> list[int]:
    ids = []
    for path in media:
        stat = path.stat()
        new = NewJob(source=Source.MANUAL, media_path=str(path), media_size=stat.st_size, media_mtime=stat.st_mtime)
        ids.append((await queue.enqueue(new)).job.id)
    return ids


async def bench_round(server: RunningServer, workdir: Path, clips: list[Path], count: int) -> Round:
    url = new_database(server, f"scaleout_{count}")
    media = workdir / "media"
    media.mkdir()
    copies = [Path(shutil.copy2(clip, media / clip.name)) for clip in clips]
    warmups = [Path(shutil.copy2(clips[i % len(clips)], media / f"warmup{i}.wav")) for i in range(count)]
    db = Database(to_async_url(url))
    try:
        await db.upgrade()
        queue = JobQueue(db)
        with running([start_worker(workdir, url, f"worker{n}") for n in range(1, count + 1)]) as workers:
            deadline = time.monotonic() + START_DEADLINE
            while not all(worker.events("wakeups_listening") for worker in workers):
                for worker in workers:
                    worker.check_alive()
                if time.monotonic() > deadline:
                    raise SystemExit("the workers did not start in time")
                await asyncio.sleep(POLL_SECONDS)

            warmup_ids = await enqueue(queue, warmups)
            await wait_for(queue, warmup_ids, workers, "the warm-up jobs")
            warmed = [len(worker.events("job_started")) for worker in workers]
            if warmed != [1] * count:
                print(f"  note: warm-up jobs per worker {warmed}: a worker loads its model during the timed run")

            job_ids = await enqueue(queue, copies)
            jobs = await wait_for(queue, job_ids, workers, "the jobs")
            started = Counter(int(str(e["job_id"])) for worker in workers for e in worker.events("job_started"))
            finished = Counter(int(str(e["job_id"])) for worker in workers for e in worker.events("job_finished"))
            per_worker = [sum(1 for e in w.events("job_started") if e["job_id"] in job_ids) for w in workers]
    finally:
        await db.close()

    wrong = [
        job.id
        for job in jobs
        if (job.state, job.attempts) != (JobState.COMPLETED, 1)
        or started[job.id] != 1
        or finished[job.id] != 1
        or not (job.result_path and Path(job.result_path).is_file())
    ]
    first_queued = min(job.created_at for job in jobs)
    last_done = max(job.finished_at for job in jobs if job.finished_at is not None)
    seconds = (last_done - first_queued).total_seconds()
    result = Round(count, len(jobs), seconds, len(wrong))
    print(
        f"{count} worker(s): {len(jobs)} jobs in {seconds:.1f} s = {result.jobs_per_min:.1f} jobs/min;"
        f" jobs per worker {per_worker}; not exactly once: {wrong or 'none'};"
        f" 1-minute load average {os.getloadavg()[0]:.1f}"
    )
    return result


async def bench(args: argparse.Namespace, base: Path) -> list[Round]:
    clips = make_clips(base / "clips", args.clips)
    print(f"{len(clips)} clips; {os.cpu_count()} CPUs; 1-minute load average {os.getloadavg()[0]:.1f}")
    started = time.perf_counter()
    (base / "pg").mkdir()
    server = start_postgres(base / "pg")
    print(f"started a throwaway postgresql server in {time.perf_counter() - started:.1f} s")
    try:
        rounds = []
        for count in range(1, args.max_workers + 1):
            workdir = base / f"round{count}"
            workdir.mkdir()
            rounds.append(await bench_round(server, workdir, clips, count))
        return rounds
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--max-workers", type=int, default=3)
    args = parser.parse_args()
    if args.clips < 1 or args.max_workers < 1:
        parser.error("--clips and --max-workers must be at least 1")
    with tempfile.TemporaryDirectory(prefix="scaleout-bench-") as workdir:
        rounds = asyncio.run(bench(args, Path(workdir)))
    double = sum(r.double_processed for r in rounds)
    rates = " ".join(f"workers{r.workers}_jobs_per_min={r.jobs_per_min:.1f}" for r in rounds)
    print(f"RESULT {rates} double_processed={double}")
    if double:
        sys.exit(1)


if __name__ == "__main__":
    main()
