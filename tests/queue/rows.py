"""Job rows written straight to the table: many jobs in one transaction (enqueue is one per job)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from transcriptarr.db.database import Database
from transcriptarr.db.models import ACTIVE_STATES, JobState, Source, Stage, Task
from transcriptarr.queue.jobqueue import JOBS


def job_row(
    name: str, *, priority: int, created_at: datetime, state: JobState = JobState.QUEUED, upload_path: str | None = None
) -> dict[str, Any]:
    """A job for /media/<name>.mkv, as enqueue would write it (claimable from `created_at` on).

    Every row has the same keys: an insert of many takes its columns from the first."""
    key = f"test:{name}"
    return {
        "state": state,
        "stage": Stage.PENDING,
        "source": Source.SCAN,
        "priority": priority,
        "media_path": f"/media/{name}.mkv",
        "upload_path": upload_path,
        "content_key": key,
        "active_key": key if state in ACTIVE_STATES else None,
        "task": Task.TRANSCRIBE,
        "target_language": "en",
        "quality": "balanced",
        "options": {},
        "details": {},
        "progress": 0.0,
        "created_at": created_at,
        "updated_at": created_at,
        "attempts": 0,
        "max_attempts": 3,
        "next_attempt_at": created_at,
        "cancel_requested": False,
        "error_permanent": False,
    }


async def insert_jobs(db: Database, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert `rows` in one transaction; their ids, in the order given."""

    def tx(conn: Connection) -> list[int]:
        before = conn.execute(select(func.coalesce(func.max(JOBS.c.id), 0))).scalar_one()
        conn.execute(JOBS.insert(), list(rows))
        ids = list(conn.execute(select(JOBS.c.id).where(JOBS.c.id > before).order_by(JOBS.c.id)).scalars())
        assert len(ids) == len(rows)
        return ids

    return await db.write(tx)
