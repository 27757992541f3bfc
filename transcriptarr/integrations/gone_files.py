"""Jobs for library files that are gone: Sonarr or Radarr deleted, replaced or renamed them.

The library finds its own jobs by key (library/jobsync.py), but a file queued by a
webhook, a person or /batch may never have been seen by a scan, so the live jobs
are looked up by path (`JobQueue.live_for_media`): only queued and processing ones,
which the claim index (state first) keeps cheap. Jobs of Bazarr uploads work on the
uploaded audio, not on the file, and are left alone.
"""

from __future__ import annotations

from transcriptarr.db.models import Job
from transcriptarr.queue.jobqueue import InvalidTransition, JobNotFound, JobQueue


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
