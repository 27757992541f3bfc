"""NOTIFY_URL: a JSON POST when a job completes or finally fails.

The POST runs as a follow-up (followups.py): stored with the job's result, sent in
the background, so the worker goes on with the next job, and retried with growing
pauses up to NOTIFY_ATTEMPTS times, across restarts, when the receiver is down, slow
(NOTIFY_TIMEOUT_SECONDS) or answers 408, 429 or 5xx. Any other 4xx means the request
itself is wrong: it is not repeated.

At least once: the body is made when the job ends and sent unchanged on every try, with
an `event_id` (also the `Idempotency-Key` header) by which a receiver can drop a repeat.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from transcriptarr.db.models import Job, JobState
from transcriptarr.integrations.followups import Attempt, FollowUp, FollowUpError, Plan
from transcriptarr.settings import Settings

log = structlog.get_logger(__name__)

# Client errors that say "try again later" rather than "this request is wrong".
_RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})


def notification(job: Job, node: str, event_id: str | None = None) -> dict[str, Any]:
    """The JSON body sent for a finished job (docs/integrations.md, "Notifications").

    A job that completed without writing anything (a foreign subtitle exists, no speech)
    is a `job.completed` with `subtitle` null and the reason in `skipped`. `event_id` is
    the same on every try of one notification, and new for each.
    """
    finished = job.finished_at or datetime.now(UTC)
    return {
        "event": "job.completed" if job.state == JobState.COMPLETED else "job.failed",
        "event_id": event_id or str(uuid.uuid4()),
        "job_id": job.id,
        "file": job.media_path,
        "source": job.source,
        "language": job.source_language,
        "target_language": job.target_language,
        "task": job.task,
        "subtitle": job.result_path,
        "skipped": (job.details or {}).get("skipped"),
        "duration_seconds": job.media_duration,
        "processing_seconds": job.processing_seconds,
        "error": job.error,
        "attempts": job.attempts,
        "finished_at": finished.isoformat(),
        "node": node,
    }


def describe_url(url: str) -> str:
    """The URL without user, password or query, which may hold a token: safe to log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # IPv6
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class Notify:
    """POST the job's summary as JSON to one URL."""

    name = "notify"

    def __init__(self, url: str, *, node: str, timeout_seconds: float = 10.0, attempts: int = 5) -> None:
        self.url = url
        self.node = node
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.attempts = attempts  # FollowUps tries this action this many times

    def wants(self, job: Job) -> bool:
        return job.state in (JobState.COMPLETED, JobState.FAILED)

    @property
    def timeout_seconds(self) -> float:
        return float(self.timeout.total or 0)

    def plan(self, job: Job) -> Plan:
        """The body, made now: the job's state as stored with its result."""
        return Plan(describe_url(self.url), {"body": notification(job, self.node)})

    async def perform(self, data: dict[str, Any], attempt: Attempt) -> None:
        where = describe_url(self.url)
        body = data.get("body")
        if not isinstance(body, dict):
            raise FollowUpError(f"the stored notification of job {attempt.job_id} has no body", retry=False)
        headers = {"Idempotency-Key": str(body.get("event_id", ""))}
        try:
            async with (
                aiohttp.ClientSession(timeout=self.timeout) as session,
                session.post(self.url, json=body, headers=headers) as response,
            ):
                status, reason = response.status, response.reason
        except TimeoutError:
            raise FollowUpError(
                f"NOTIFY_URL {where} did not answer within {self.timeout.total:g} s (NOTIFY_TIMEOUT_SECONDS)"
            ) from None
        except aiohttp.ClientError as exc:
            raise FollowUpError(f"cannot reach NOTIFY_URL {where}: {exc or type(exc).__name__}") from None
        if status < 300:
            log.info("notification_sent", job_id=attempt.job_id, path=attempt.path, url=where, status=status)
            return
        retry = status >= 500 or status in _RETRYABLE_CLIENT_ERRORS
        advice = "" if retry else "; check NOTIFY_URL"
        raise FollowUpError(f"NOTIFY_URL {where} answered {status} {reason or ''}".rstrip() + advice, retry=retry)


def notify_from_settings(settings: Settings) -> FollowUp | None:
    """The notification follow-up, when NOTIFY_URL is set."""
    if not settings.notify_url:
        return None
    return Notify(
        settings.notify_url,
        node=settings.node_name,
        timeout_seconds=settings.notify_timeout_seconds,
        attempts=settings.notify_attempts,
    )
