"""Queue a file a media server told us about: the library's rules decide, the webhook sets the priority.

The decision is `transcriptarr explain`'s (sidecars, embedded and written
subtitles, audio language, ignore rules), so a webhook never queues what a scan
would not. A job that is already queued for the file (a scan found it first) is
moved up to webhook priority rather than queued twice.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from transcriptarr.db.models import JobState, Source
from transcriptarr.library import Library
from transcriptarr.library.priority import job_priority
from transcriptarr.queue.jobqueue import JobQueue, NewJob

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class FileOutcome:
    path: str
    queued: bool  # at least one new job
    reason: str
    job_ids: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # the library's whole decision, as `explain` prints it


async def queue_media_file(
    library: Library,
    queue: JobQueue,
    path: str,
    webhook: Mapping[str, Any],
    *,
    wake: Callable[[], None] = lambda: None,
    source: Source = Source.WEBHOOK,
    priority: int | None = None,
) -> FileOutcome:
    """Decide for `path` (a local path inside a library) and queue its jobs at webhook priority.

    `webhook` goes into the jobs' details, so that the refresh after the subtitle
    is written knows which server and item to tell. `source` and `priority` change
    the band (SubGen's /batch is a person's request: manual) or set the priority
    outright (a renamed file's jobs keep the one they had).
    """
    path = await asyncio.to_thread(os.path.abspath, path)  # the library's form of the path: same job keys
    decision = await library.explain(path)
    if not decision.queue:
        log.info("webhook_file_not_queued", path=path, reason=decision.summary, **_origin(webhook))
        return FileOutcome(path, False, decision.summary, reasons=decision.reasons)
    info = await asyncio.to_thread(os.stat, path)
    config = library.config
    if priority is None:
        priority = job_priority(source, config.priority_order, size=info.st_size, mtime=info.st_mtime, now=time.time())
    created, reasons, job_ids = False, [], []
    for target, task in decision.jobs:
        result = await queue.enqueue(
            NewJob(
                source=source,
                task=task,
                media_path=path,
                media_size=info.st_size,
                media_mtime=info.st_mtime,
                target_language=target,
                source_language=decision.source_language,
                priority=priority,
                quality=config.quality,
                media_duration=decision.duration,
                details={"found_by": str(source), "reason": decision.summary, "webhook": dict(webhook)},
            )
        )
        job, reason = result.job, result.reason
        if not result.created and job.state == JobState.QUEUED:
            # Queued by a scan or the watcher first (the usual case for a new file): the webhook's item
            # joins it, so the media server is still refreshed once the subtitle is written.
            before = job.priority
            job = await queue.promote(job.id, priority, {"webhook": dict(webhook)})
            if job.priority > before:
                reason += f"; moved up to {source} priority {priority}"
        created |= result.created
        reasons.append(reason)
        job_ids.append(job.id)
    if created:
        wake()
    summary = decision.summary if created else "; ".join(dict.fromkeys(reasons))
    log.info(
        "webhook_file_queued" if created else "webhook_file_already_queued",
        path=path,
        job_ids=job_ids,
        priority=priority,
        reason=summary,
        **_origin(webhook),
    )
    return FileOutcome(path, created, summary, job_ids, decision.reasons)


def _origin(webhook: Mapping[str, Any]) -> dict[str, Any]:
    return {"server": webhook.get("server"), "item_id": webhook.get("item_id")}
