"""A queue worker process for the multi-process tests (tests/integration/test_queue_processes.py).

It proves nothing by itself: it is one OS process of many taking jobs from the same
database, so the tests can show that claims stay exclusive *across processes* (not
only across coroutines of one event loop) and that a process killed while holding
jobs loses none of them.

    python -m tests.integration.queue_drainer --url URL --claimers N --out FILE
        [--lease S] [--hold] [--wait-for FILE]

Drain mode (default): N claimer coroutines each claim one job at a time, append its
id to FILE (one line, flushed before the job is completed) and complete it, until the
queue has nothing left for them. Exit status 0, or 1 if a completion was refused
(the process had lost a job it believed it owned).

`--wait-for FILE`: once connected, write a `STARTED` line and claim nothing until FILE
exists, so that several processes can be released at the same moment.

Hold mode (`--hold`): the N claimers each claim one job (so up to N in all), their ids
are written, then a `READY` line; the process then blocks without completing or
renewing anything until it is killed (or its parent goes away).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from transcriptarr.db.database import Database
from transcriptarr.queue.jobqueue import JobQueue
from transcriptarr.settings import to_async_url

STARTED = "STARTED"
READY = "READY"
POLL_SECONDS = 0.02
WAIT_FOR_LIMIT_SECONDS = 120.0


class Drainer:
    def __init__(self, queue: JobQueue, out: TextIO) -> None:
        self.queue = queue
        self.out = out
        self.node = f"drainer-{os.getpid()}"
        self.refused: list[int] = []

    def write(self, line: str) -> None:
        self.out.write(f"{line}\n")
        self.out.flush()

    def worker(self, number: int) -> str:
        return f"{self.node}/c{number}"

    async def drain(self, number: int) -> int:
        """Claim and complete one job at a time until none is left; return how many."""
        worker, done = self.worker(number), 0
        while jobs := await self.queue.claim(worker, self.node, 1):
            [job] = jobs
            self.write(str(job.id))
            if not await self.queue.complete(job.id, worker):
                self.refused.append(job.id)
            done += 1
        return done

    async def hold(self, number: int) -> list[int]:
        jobs = await self.queue.claim(self.worker(number), self.node, 1)
        for job in jobs:
            self.write(str(job.id))
        return [job.id for job in jobs]


async def wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + WAIT_FOR_LIMIT_SECONDS
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {WAIT_FOR_LIMIT_SECONDS:.0f} s")
        await asyncio.sleep(POLL_SECONDS)


async def block_until_orphaned() -> None:
    """Hold on until killed; exit on our own only if the parent test has gone away."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(0.5)


async def run(args: argparse.Namespace) -> int:
    db = Database(to_async_url(args.url), pool_size=args.claimers)
    queue = JobQueue(db, lease_seconds=args.lease)
    out_path = Path(args.out)
    try:
        with out_path.open("a", encoding="utf-8") as out:
            drainer = Drainer(queue, out)
            if args.wait_for is not None:
                await db.read(lambda conn: None)  # connect before saying we are ready to go
                drainer.write(STARTED)
                await wait_for_file(Path(args.wait_for))
            # A task group: if one claimer fails, the others stop before the database closes.
            if args.hold:
                async with asyncio.TaskGroup() as group:
                    holds = [group.create_task(drainer.hold(i)) for i in range(args.claimers)]
                drainer.write(READY)
                print(f"{drainer.node}: holding {sum(len(t.result()) for t in holds)} jobs", file=sys.stderr)
                await block_until_orphaned()
                return 0
            async with asyncio.TaskGroup() as group:
                drains = [group.create_task(drainer.drain(i)) for i in range(args.claimers)]
            counts = [task.result() for task in drains]
            print(f"{drainer.node}: completed {sum(counts)} jobs, per claimer {counts}", file=sys.stderr)
            if drainer.refused:
                print(f"{drainer.node}: completion refused for jobs {drainer.refused}", file=sys.stderr)
                return 1
            return 0
    finally:
        await db.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="user-style database URL, e.g. sqlite:///path/queue.db")
    parser.add_argument("--claimers", type=int, default=4, help="concurrent claimer coroutines")
    parser.add_argument("--out", required=True, help="file that receives one claimed job id per line")
    parser.add_argument("--lease", type=float, default=60.0, help="lease length in seconds")
    parser.add_argument("--hold", action="store_true", help="claim up to --claimers jobs, say READY, block")
    parser.add_argument("--wait-for", default=None, help="say STARTED, then claim only once this file exists")
    args = parser.parse_args(argv)
    if args.claimers < 1:
        parser.error("--claimers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
