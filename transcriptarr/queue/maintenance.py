"""Housekeeping that keeps the queue honest while the service runs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Collection
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
    running_here: Callable[[], Collection[str]] = tuple,
) -> None:
    """Requeue jobs of dead workers (every third of a lease), delete old finished jobs (hourly) and
    remove the spool and work files of jobs that ended (`leftovers`, every `sweep_every` seconds;
    the service swept once at start-up).

    A lease is judged by heartbeats, and a stalled database keeps every heartbeat from being
    written. So this node never requeues the jobs its own workers are still running
    (`running_here`: their worker ids), and after a round the database kept waiting (or
    refused) for longer than a renewal takes, other nodes get one more lease to renew theirs
    before their jobs count as abandoned: they could not write either (issue 15)."""
    lease = queue.lease.total_seconds()
    interval = max(1.0, lease / 3)
    since_cleanup = cleanup_every  # clean up once at start
    since_sweep = 0.0
    judge_after = 0.0  # monotonic time from which expired leases are judged again
    while not stop.is_set():
        try:
            recovered, started = 0, time.monotonic()
            if started >= judge_after:
                recovered = await queue.recover_expired(alive=running_here())
            if time.monotonic() - started > interval:  # the database stalled under this round
                judge_after = _after_stall(judge_after, lease)
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
            judge_after = _after_stall(judge_after, lease)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        since_cleanup += interval
        since_sweep += interval


def _after_stall(judge_after: float, lease: float) -> float:
    """When to judge leases again after the database did not answer this node in time: one lease on."""
    now = time.monotonic()
    if now >= judge_after:  # a new pause: said once, not every round of a long outage
        log.info("lease_judging_paused", seconds=round(lease, 1), reason=_PAUSE_REASON)
    return now + lease


_PAUSE_REASON = (
    "the database did not answer in time; other nodes could not renew their leases either, "
    "so they get one more lease before their jobs are queued again"
)
