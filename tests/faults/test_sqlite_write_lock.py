"""Another process holds SQLite's write lock: `/health` says the database is degraded, then ok; no write is lost.

A real node (`transcriptarr run`, HTTP, no workers) and a second process that takes
the database's write lock (`BEGIN IMMEDIATE`) and keeps it until told to let go (15 s
at most). Meanwhile a job is queued over HTTP: its write waits for the lock. Reads go
on (WAL), so `SELECT 1` alone would call the database healthy; the oldest waiting
write says otherwise (transcriptarr/db/database.py, `oldest_write_seconds`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from tests.faults.sqlite_node import nodes_in
from tests.polling import eventually
from transcriptarr.db.database import WRITE_STALL_SECONDS, Database
from transcriptarr.settings import to_async_url

HOLD_AT_MOST_SECONDS = 15
# /health answers from a snapshot refreshed every 0.5 s; the writes are sampled when it is made.
DEGRADED_WITHIN = WRITE_STALL_SECONDS + 3.0
HEALTH_ANSWERS_WITHIN = 2.0

# Takes the write lock, says so, keeps it until a line arrives on stdin (or HOLD_AT_MOST_SECONDS pass).
HOLDER = f"""
import select, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
select.select([sys.stdin], [], [], {HOLD_AT_MOST_SECONDS})
conn.execute("COMMIT")
print("released", flush=True)
"""


def health(url: str) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    answer = requests.get(f"{url}/health", timeout=HEALTH_ANSWERS_WITHIN)
    return answer.status_code, answer.json(), time.monotonic() - started


def answers(url: str) -> bool:
    try:
        return health(url)[0] == 200
    except requests.ConnectionError:
        return False  # service_started comes just before the server listens


async def test_health_says_degraded_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    database, library = tmp_path / "queue.db", tmp_path / "library"
    library.mkdir()
    media = library / "episode.mkv"
    media.write_text("not really a video: with no workers its job just waits in the queue")
    with nodes_in(tmp_path) as nodes:
        node = nodes.start("main", database, http=True, LIBRARY_PATHS=str(library))
        await node.started()
        url = f"http://127.0.0.1:{node.port}"
        await eventually(lambda: answers(url), "the node to answer /health", 30)
        code, report, _ = health(url)
        assert (code, report["status"], report["database"]["state"]) == (200, "ok", "ok"), report

        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(database)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        try:
            assert holder.stdout is not None and holder.stdin is not None
            assert holder.stdout.readline() == b"locked\n"
            with ThreadPoolExecutor(1) as client:
                queued_at = time.monotonic()
                posting = client.submit(requests.post, f"{url}/api/jobs", json={"path": str(media)}, timeout=60)
                seen: list[tuple[int, dict[str, Any], float]] = []

                def degraded() -> bool:
                    seen.append(health(url))
                    return seen[-1][1]["database"]["state"] == "degraded"

                await eventually(degraded, "/health to say the database is degraded", DEGRADED_WITHIN + 2, every=0.2)
                assert time.monotonic() - queued_at <= DEGRADED_WITHIN
                assert not posting.done()  # the write still waits for the lock
                code, report, _ = seen[-1]
                assert code == 503 and report["status"] == "degraded" and not report["database"]["ok"]
                assert report["database"]["oldest_write_wait_seconds"] > WRITE_STALL_SECONDS
                assert "another process holds SQLite's write lock" in report["database"]["error"]
                assert max(took for _, _, took in seen) < HEALTH_ANSWERS_WITHIN

                holder.stdin.write(b"release\n")
                holder.stdin.flush()
                assert holder.stdout.readline() == b"released\n"
                await eventually(lambda: health(url)[1]["database"]["state"] == "ok", "/health to say ok again", 10)
                answer = posting.result(timeout=30)
        finally:
            holder.kill()
            holder.wait(10)
        assert answer.status_code == 201, answer.text
        [queued] = answer.json()["jobs"]
        job = requests.get(f"{url}/api/jobs/{queued['job']['id']}", timeout=10).json()["job"]
        assert (job["state"], job["media_path"]) == ("queued", str(media))  # the write waited, and it is there
        code, report, _ = health(url)
        assert (code, report["status"]) == (200, "ok") and report["database"]["oldest_write_wait_seconds"] < 1
        node.process.terminate()
        assert await node.exited() == 0, node.tail()
    assert not node.errors(), node.tail()


async def test_a_write_that_fails_for_want_of_the_database_counts_until_one_goes_through(tmp_path: Path) -> None:
    """A caller tries such a write again as a new write: the wait runs from the first failure to the next success."""
    db = Database(to_async_url(f"sqlite:///{tmp_path / 'queue.db'}"))
    try:
        assert db.oldest_write_seconds() == 0.0

        def missing_table(conn: Connection) -> None:
            conn.exec_driver_sql("INSERT INTO nowhere VALUES (1)")  # an OperationalError, as "database is locked"

        with pytest.raises(OperationalError):
            await db.write(missing_table)
        first = db.oldest_write_seconds()
        await eventually(lambda: db.oldest_write_seconds() > first, "the wait to grow", 10)
        await db.write(lambda conn: conn.exec_driver_sql("CREATE TABLE notes (text TEXT)"))
        assert db.oldest_write_seconds() == 0.0
    finally:
        await db.close()
