"""Jobs for library files that are gone: Sonarr or Radarr deleted, replaced or renamed them.

The library finds its own jobs by key (library/jobsync.py), but a file queued by a
webhook, a person or /batch may never have been seen by a scan, so the live jobs
are looked up by path here: only queued and processing ones, which the claim index
(state first) keeps cheap. Jobs of Bazarr uploads work on the uploaded audio, not
on the file, and are left alone.
"""

from __future__ import annotations

from sqlalchemy import select

from transcriptarr.db.models import Job, JobState
from transcriptarr.queue.jobqueue import COLUMNS, JOBS, InvalidTransition, JobNotFound, JobQueue, job_from_values

_LIVE = (JobState.QUEUED, JobState.PROCESSING)


async def live_jobs(queue: JobQueue, path: str, *, folder: bool = False) -> list[Job]:
    """The queued and running jobs for the file `path`, or for every file under it with `folder`."""
    where = (
        JOBS.c.media_path.startswith(path.rstrip("/") + "/", autoescape=True) if folder else JOBS.c.media_path == path
    )
    query = (
        select(*COLUMNS)
        .where(JOBS.c.state.in_([str(state) for state in _LIVE]), JOBS.c.upload_path.is_(None), where)
        .order_by(JOBS.c.id)
    )
    rows = await queue.db.read(lambda conn: conn.execute(query).all())
    return [job_from_values(dict(row._mapping)) for row in rows]


async def drop_jobs(queue: JobQueue, jobs: list[Job], reason: str) -> list[int]:
    """Cancel these jobs (a running one stops at its next checkpoint); the ids of those cancelled."""
    dropped = []
    for job in jobs:
        try:
            await queue.cancel(job.id, reason)
        except (InvalidTransition, JobNotFound):
            continue  # finished meanwhile
        dropped.append(job.id)
    return dropped
