"""Follow-ups of finished jobs: tell a media server, Bazarr or a notification URL.

A worker hands the finished job over and goes on with the next one at once;
each follow-up runs in its own task and is retried with growing pauses when
the other side is down. Follow-ups live in memory: a restart forgets the ones
still pending (the subtitle itself is on disk either way).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol

import structlog

from transcriptarr.db.models import Job

log = structlog.get_logger(__name__)


class FollowUpError(Exception):
    """A follow-up failed; `retry=False` when trying again cannot help (bad key, unknown item)."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class FollowUp(Protocol):
    """A follow-up may also have an `attempts` attribute: its own number of tries (default: FollowUps')."""

    name: str

    def wants(self, job: Job) -> bool:
        """Whether this follow-up has anything to do for this finished job."""
        ...

    async def __call__(self, job: Job) -> None:
        """Do it; raise FollowUpError (or any exception) to have it retried."""
        ...


class FollowUps:
    def __init__(
        self,
        actions: Sequence[FollowUp],
        *,
        attempts: int = 5,
        first_delay: float = 2.0,
        max_delay: float = 300.0,
        max_pending: int = 1000,
    ) -> None:
        self.actions = list(actions)
        self.attempts = attempts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.max_pending = max_pending
        self._pending: set[asyncio.Task[None]] = set()

    def __bool__(self) -> bool:
        return bool(self.actions)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, job: Job) -> None:
        """Start every follow-up that wants this job; returns at once."""
        for action in self.actions:
            if not action.wants(job):
                continue
            if len(self._pending) >= self.max_pending:
                log.warning(
                    "followup_dropped",
                    job_id=job.id,
                    path=job.media_path,
                    action=action.name,
                    reason=f"{self.max_pending} follow-ups already waiting; the other side seems down",
                )
                continue
            task = asyncio.create_task(self._run(action, job), name=f"followup-{action.name}-{job.id}")
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _run(self, action: FollowUp, job: Job) -> None:
        delay = self.first_delay
        attempts = int(getattr(action, "attempts", self.attempts))
        for attempt in range(1, attempts + 1):
            try:
                await action(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                retry = getattr(exc, "retry", True) and attempt < attempts
                log.warning(
                    "followup_failed",
                    job_id=job.id,
                    path=job.media_path,
                    action=action.name,
                    attempt=attempt,
                    error=str(exc) or type(exc).__name__,
                    next_try_seconds=round(delay, 1) if retry else None,
                )
                if not retry:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay)
            else:
                log.info("followup_done", job_id=job.id, path=job.media_path, action=action.name, attempt=attempt)
                return

    async def drain(self, seconds: float) -> None:
        """On shutdown: give pending follow-ups `seconds` seconds, then cancel the rest."""
        if not self._pending:
            return
        _, left = await asyncio.wait(set(self._pending), timeout=seconds)
        for task in left:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*left, return_exceptions=True)
        if left:
            log.warning("followups_abandoned", count=len(left), reason="the service is stopping")
