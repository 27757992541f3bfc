"""Housekeeping that keeps the queue honest while the service runs."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from transcriptarr.db.outage import log_failure
from transcriptarr.queue.jobqueue import JobQueue
from transcriptarr.queue.leftovers import JobFolders, remove_leftovers
from transcriptarr.queue.registry import WorkerRegistry

log = structlog.get_logger(__name__)


async def keep_queue_healthy(
    queue: JobQueue,
    registry: WorkerRegistry,
    stop: asyncio.Event,
    *,
    job_retention: timedelta,
    result_retention: timedelta,
    cleanup_every: float = 3600.0,
    leftovers: JobFolders | None = None,
    sweep_every: float = 300.0,
) -> None:
    """Requeue jobs of dead workers (every third of a lease), delete old finished jobs (hourly) and
    remove the spool and work files of jobs that ended (`leftovers`, every `sweep_every` seconds;
    the service swept once at start-up)."""
    interval = max(1.0, queue.lease.total_seconds() / 3)
    since_cleanup = cleanup_every  # clean up once at start
    since_sweep = 0.0
    while not stop.is_set():
        try:
            recovered = await queue.recover_expired()
            if recovered:
                log.warning("jobs_recovered", count=recovered, reason="lease expired: worker stopped responding")
            if since_cleanup >= cleanup_every:
                removed = await queue.cleanup(job_retention=job_retention, result_retention=result_retention)
                await registry.prune()
                if removed:
                    log.info("jobs_cleaned_up", count=removed)
                since_cleanup = 0.0
            if leftovers is not None and since_sweep >= sweep_every:
                await remove_leftovers(queue, leftovers, when="periodic")
                since_sweep = 0.0
        except Exception as exc:  # database away: say so, try again next round
            log_failure(log, "maintenance_failed", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        since_cleanup += interval
        since_sweep += interval
