"""Bringing the queue in line with the library's decisions: queue, follow moves, cancel.

The library only knows the jobs its decisions name (media key = path + task + target),
so it looks them up by key; it never scans the job table by path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from transcriptarr.db.models import Job, JobState, Source
from transcriptarr.library.config import LibraryConfig
from transcriptarr.library.priority import job_priority
from transcriptarr.library.rules import Decision, JobSpec
from transcriptarr.queue.jobqueue import InvalidTransition, JobNotFound, JobQueue, NewJob
from transcriptarr.queue.keys import media_key

log = structlog.get_logger(__name__)

# Jobs the library queued itself; jobs asked for by a person or by Bazarr are theirs.
LIBRARY_SOURCES = (Source.SCAN, Source.WATCH)


@dataclass(frozen=True)
class FileState:
    size: int
    mtime: float  # st_mtime, as the queue compares it


@dataclass(frozen=True)
class QueueAction:
    path: str
    action: str  # "queued", "exists" (already queued or done) or "cancelled"
    job_id: int
    target: str | None
    task: str
    priority: int
    reason: str


def key_of(path: str, spec: JobSpec) -> str:
    target, task = spec
    return media_key(path, task, target)


class JobSync:
    def __init__(self, queue: JobQueue, config: LibraryConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.queue = queue
        self.config = config
        self.clock = clock

    async def apply(
        self,
        path: str,
        state: FileState,
        decision: Decision,
        *,
        previous: Sequence[JobSpec],
        source: Source,
        inherited: Mapping[JobSpec, Job] | None = None,
    ) -> list[QueueAction]:
        """Queue the decision's jobs; cancel queued library jobs it no longer wants."""
        actions: list[QueueAction] = []
        dropped = [spec for spec in previous if spec not in decision.jobs]
        if dropped:
            why = "no longer needed: " + "; ".join(_target_reasons(decision))
            actions += await self.cancel(path, dropped, why, only_queued_library_jobs=True)
        for spec in decision.jobs:
            actions.append(await self._enqueue(path, state, decision, spec, source, (inherited or {}).get(spec)))
        return actions

    async def _enqueue(
        self, path: str, state: FileState, decision: Decision, spec: JobSpec, source: Source, old: Job | None
    ) -> QueueAction:
        target, task = spec
        details: dict[str, object] = {"found_by": str(source), "reason": decision.summary}
        if old is not None:
            # The job follows the file: same source and priority (also one set by hand).
            source, priority = Source(old.source), old.priority
            details.update(moved_from=old.media_path, replaces_job=old.id)
        else:
            priority = job_priority(
                source, self.config.priority_order, size=state.size, mtime=state.mtime, now=self.clock()
            )
        result = await self.queue.enqueue(
            NewJob(
                source=source,
                task=task,
                media_path=path,
                media_size=state.size,
                media_mtime=state.mtime,
                target_language=target,
                source_language=decision.source_language,
                priority=priority,
                quality=self.config.quality,
                media_duration=decision.duration,
                details=details,
            )
        )
        action = "queued" if result.created else "exists"
        job = result.job
        if result.created:
            log.info(
                "job_queued_by_library",
                path=path,
                job_id=job.id,
                target=target,
                task=str(task),
                priority=job.priority,
                source=str(source),
            )
        return QueueAction(path, action, job.id, target, str(task), job.priority, result.reason)

    async def cancel(
        self, path: str, specs: Sequence[JobSpec], reason: str, *, only_queued_library_jobs: bool = False
    ) -> list[QueueAction]:
        """Cancel the live jobs of these specs (all of them, or only queued library jobs)."""
        return [action for _, action in await self._cancel(path, specs, reason, only_queued_library_jobs)]

    async def take_over(self, old_path: str, new_path: str, specs: Sequence[JobSpec]) -> dict[JobSpec, Job]:
        """A file moved: cancel its live jobs at the old path; return them so new ones can inherit."""
        cancelled = await self._cancel(old_path, specs, f"moved to {new_path}", False)
        return dict(pair for pair, _ in cancelled)

    async def _cancel(
        self, path: str, specs: Sequence[JobSpec], reason: str, only_queued_library_jobs: bool
    ) -> list[tuple[tuple[JobSpec, Job], QueueAction]]:
        done = []
        for spec in specs:
            live = await self.queue.find_live(key_of(path, spec))
            if live is None:
                continue
            if only_queued_library_jobs and (
                live.state != JobState.QUEUED or live.source not in LIBRARY_SOURCES or live.attempts > 0
            ):
                # A running job is left to finish (its worker checks the target file
                # itself); a job someone asked for by hand or via Bazarr stays. So does one
                # that ran before: the subtitle now there may be its own, written just before
                # a crash kept it from being marked done; its next attempt writes it again.
                continue
            try:
                state = await self.queue.cancel(live.id, reason)
            except (InvalidTransition, JobNotFound):
                continue  # finished or removed meanwhile
            log.info("job_cancelled_by_library", path=path, job_id=live.id, reason=reason, state=str(state))
            action = QueueAction(path, "cancelled", live.id, spec[0], str(spec[1]), live.priority, reason)
            done.append(((spec, live), action))
        return done


def _target_reasons(decision: Decision) -> list[str]:
    """The reasons that say why each wanted language is covered (or the deciding one)."""
    covered = [reason for reason in decision.reasons if ": has " in reason or ": covered by " in reason]
    return covered or [decision.summary]
