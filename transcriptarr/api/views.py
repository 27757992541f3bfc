"""What the status routes and the status page show: jobs, workers, queue, health, as plain dicts."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from transcriptarr import __version__
from transcriptarr.db.database import WRITE_STALL_SECONDS
from transcriptarr.db.models import Job, JobState, utcnow

if TYPE_CHECKING:
    from transcriptarr.api.dependencies import ApiDeps, LiveJob

_NEXT_UP = 20
_RECENT_FAILURES = 10


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def job_eta(job: Job, progress: float, now: datetime) -> float | None:
    """Seconds left for a running job, from its speed so far."""
    if job.state != JobState.PROCESSING or job.started_at is None or progress <= 0:
        return None
    elapsed = (now - job.started_at).total_seconds()
    return round(max(0.0, elapsed * (100.0 - progress) / progress), 1)


def job_dict(job: Job, live: LiveJob | None = None, now: datetime | None = None) -> dict[str, Any]:
    """A job for clients; `live` (a job running here) has fresher progress than the database."""
    progress = live.progress if live is not None else job.progress
    stage = live.stage.value if live is not None else job.stage
    return {
        "id": job.id,
        "state": job.state,
        "stage": stage,
        "progress": progress,
        "eta_seconds": job_eta(job, progress, now or utcnow()),
        "source": job.source,
        "priority": job.priority,
        "task": job.task,
        "media_path": job.media_path,
        "upload": job.upload_path is not None,
        "source_language": job.source_language,
        "target_language": job.target_language,
        "language_probability": job.language_probability,
        "media_duration": job.media_duration,
        "processing_seconds": job.processing_seconds,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "node": job.node,
        "worker": job.worker,
        "cancel_requested": job.cancel_requested,
        "error": job.error,
        "error_permanent": job.error_permanent,
        "result_path": job.result_path,
        "has_result": job.result_text is not None,
        "details": job.details,
    }


async def health(parts: ApiDeps) -> dict[str, Any]:
    """Liveness plus the database and this node's workers; never raises.

    The database is "unavailable" when it does not answer, "degraded" when it answers reads
    but a write has waited longer than WRITE_STALL_SECONDS (another process holding SQLite's
    write lock, a server that stalls): both are `ok: false` (503, control.py)."""
    db = await parts.db.health()
    waited = parts.db.oldest_write_seconds()
    stalled = db.ok and waited > WRITE_STALL_SECONDS
    state, error = ("unavailable", db.error) if not db.ok else ("ok", None)
    if stalled:
        holder = "another process holds SQLite's write lock" if db.backend == "sqlite" else "the database stalls"
        state = "degraded"
        error = f"a write has waited {waited:.0f} s ({holder}); writes wait and go through once it is released"
    busy = len(parts.pool.running())
    return {
        "status": "ok" if state == "ok" else "degraded",
        "version": __version__,
        "node": parts.settings.node_name,
        "database": {
            "ok": state == "ok",
            "state": state,
            "oldest_write_wait_seconds": round(waited, 1),
            "backend": db.backend,
            "schema_revision": db.schema_revision,
            "schema_current": db.schema_current,
            "error": error,
        },
        "workers": {"configured": parts.pool.size(), "busy": busy, "idle": parts.pool.size() - busy},
    }


async def status(parts: ApiDeps) -> dict[str, Any]:
    """Everything the status page and /api/status show."""
    settings = parts.settings
    now = utcnow()
    live = parts.pool.running()
    nodes = await parts.workers.nodes()
    workers = [worker for node in nodes for worker in node.workers]
    running = await parts.queue.list_jobs(states=[JobState.PROCESSING], limit=200)
    queued = await parts.queue.next_up(_NEXT_UP)
    failed = await parts.queue.list_jobs(states=[JobState.FAILED], limit=_RECENT_FAILURES)
    alive = [worker for worker in workers if worker.alive]
    stats = await parts.queue.stats(workers=len(alive), now=now)
    by_id = {job.id: job for job in running}
    return {
        "version": __version__,
        "node": settings.node_name,
        "mode": sorted(mode.value for mode in settings.transcriptarr_mode),
        "model": settings.whisper_model,
        "device": settings.whisper_device,
        "devices": list(parts.pool.devices),
        "generated_at": now.isoformat(),
        # Every node on this database (this one, other `run` and `worker` processes), each with its workers.
        "nodes": [node.as_dict(now) for node in nodes],
        "workers": [
            {
                "id": worker.id,
                "node": worker.node,
                "device": worker.device,
                "state": worker.state,
                "alive": worker.alive,
                "heartbeat_at": _iso(worker.heartbeat_at),
                "job": (
                    job_dict(by_id[worker.job_id], live.get(worker.job_id), now)
                    if worker.job_id is not None and worker.job_id in by_id
                    else None
                ),
            }
            for worker in workers
        ],
        "running": [job_dict(job, live.get(job.id), now) for job in running],
        "next": [job_dict(job, None, now) for job in queued],
        "recent_failures": [job_dict(job, None, now) for job in failed],
        "queue": stats.as_dict(),
    }
