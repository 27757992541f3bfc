"""Which workers are alive, on which node, doing what (for status pages and the CLI)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete, insert, select, update

from transcriptarr.db.database import Database
from transcriptarr.db.models import WorkerRecord, utcnow

WORKERS = cast(Table, WorkerRecord.__table__)


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    node: str
    device: str
    state: str
    job_id: int | None
    heartbeat_at: datetime
    alive: bool


class WorkerRegistry:
    def __init__(self, db: Database, *, stale_after: timedelta = timedelta(seconds=90)) -> None:
        self.db = db
        self.stale_after = stale_after

    async def register(self, worker_id: str, node: str, device: str) -> None:
        now = utcnow()
        async with self.db.engine.begin() as conn:
            await conn.execute(delete(WORKERS).where(WORKERS.c.id == worker_id))
            await conn.execute(
                insert(WORKERS).values(
                    id=worker_id,
                    node=node,
                    device=device,
                    state="idle",
                    job_id=None,
                    started_at=now,
                    heartbeat_at=now,
                    pid=os.getpid(),
                )
            )

    async def beat(self, worker_id: str, state: str, job_id: int | None) -> None:
        async with self.db.engine.begin() as conn:
            await conn.execute(
                update(WORKERS)
                .where(WORKERS.c.id == worker_id)
                .values(state=state, job_id=job_id, heartbeat_at=utcnow())
            )

    async def unregister(self, worker_id: str) -> None:
        async with self.db.engine.begin() as conn:
            await conn.execute(delete(WORKERS).where(WORKERS.c.id == worker_id))

    async def list(self) -> list[WorkerInfo]:
        now = utcnow()
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(select(WORKERS).order_by(WORKERS.c.node, WORKERS.c.id))).all()
        return [
            WorkerInfo(
                id=row.id,
                node=row.node,
                device=row.device,
                state=row.state,
                job_id=row.job_id,
                heartbeat_at=row.heartbeat_at,
                alive=now - row.heartbeat_at < self.stale_after,
            )
            for row in rows
        ]

    async def prune(self, older_than: timedelta = timedelta(days=1)) -> int:
        async with self.db.engine.begin() as conn:
            result = await conn.execute(delete(WORKERS).where(WORKERS.c.heartbeat_at < utcnow() - older_than))
        return int(result.rowcount)
