"""Queue statistics: counts, throughput and an ETA from measured speed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, func, select

from transcriptarr.db.database import Database
from transcriptarr.db.models import ACTIVE_STATES, Job, JobState

JOBS = cast(Table, Job.__table__)


@dataclass(frozen=True)
class QueueStats:
    counts: dict[str, int]
    completed_last_hour: int
    failed_last_hour: int
    # Media seconds transcribed per second of processing, per worker (None: no data yet).
    speed: float | None
    remaining_media_seconds: float
    eta_seconds: float | None

    def as_dict(self) -> dict[str, object]:
        return {
            "counts": self.counts,
            "completed_last_hour": self.completed_last_hour,
            "failed_last_hour": self.failed_last_hour,
            "speed": self.speed,
            "remaining_media_seconds": round(self.remaining_media_seconds, 1),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
        }


async def queue_stats(db: Database, now: datetime, *, workers: int) -> QueueStats:
    hour_ago = now - timedelta(hours=1)
    async with db.engine.connect() as conn:
        counts = {state.value: 0 for state in JobState}
        for state, count in (await conn.execute(select(JOBS.c.state, func.count()).group_by(JOBS.c.state))).all():
            counts[state] = int(count)
        recent = (
            await conn.execute(
                select(JOBS.c.state, func.count()).where(JOBS.c.finished_at >= hour_ago).group_by(JOBS.c.state)
            )
        ).all()
        done = dict((state, int(count)) for state, count in recent)
        measured = (
            await conn.execute(
                select(func.sum(JOBS.c.media_duration), func.sum(JOBS.c.processing_seconds)).where(
                    JOBS.c.state == JobState.COMPLETED,
                    JOBS.c.finished_at >= now - timedelta(days=1),
                    JOBS.c.media_duration.is_not(None),
                    JOBS.c.processing_seconds > 0,
                )
            )
        ).one()
        known = (
            await conn.execute(
                select(
                    func.sum(JOBS.c.media_duration * (100.0 - JOBS.c.progress) / 100.0),
                    func.avg(JOBS.c.media_duration),
                ).where(JOBS.c.state.in_(list(ACTIVE_STATES)), JOBS.c.media_duration.is_not(None))
            )
        ).one()
        unknown = (
            await conn.execute(
                select(func.count()).where(and_(JOBS.c.state.in_(list(ACTIVE_STATES)), JOBS.c.media_duration.is_(None)))
            )
        ).scalar_one()
    media_s, processing_s = measured
    speed = float(media_s) / float(processing_s) if media_s and processing_s else None
    remaining_known, average = known
    # Files not probed yet count as an average file (or 30 min when nothing is known).
    remaining = float(remaining_known or 0.0) + int(unknown) * float(average or 1800.0)
    eta = None
    if speed and workers > 0:
        eta = remaining / (speed * workers)
    elif remaining == 0:
        eta = 0.0
    return QueueStats(
        counts=counts,
        completed_last_hour=done.get(JobState.COMPLETED, 0),
        failed_last_hour=done.get(JobState.FAILED, 0),
        speed=speed,
        remaining_media_seconds=remaining,
        eta_seconds=eta,
    )
