"""Follow-ups of finished jobs: tell a media server, Bazarr or a notification URL, at least once.

Which follow-ups a finished job has is decided here (`FollowUps.plan`, each action's
`wants` and `plan`) and stored by the queue with the job's result, in the same
transaction (queue/followups.py): a job whose result is stored has its follow-ups
stored too, even if the process dies the next instant.

`FollowUps` then does them: it claims due follow-ups (safe with several nodes),
runs each in its own task so a slow receiver never holds up the next job, marks
it done, or tries again later with a doubling pause (`first_delay` up to
`max_delay`), and gives up, saying why, after an action's number of attempts, when
the other side says trying again cannot help, or once the follow-up is older than
`max_age`. At start-up it takes back what this node was doing when it stopped; what
was pending is then done at once. At shutdown, attempts still running are handed
back for the next start.

At least once, not exactly once: a process killed between a call and the record that
it succeeded makes the call again. Every action is harmless to repeat (a refresh, a
disk scan; an upload first checks whether Bazarr still wants the subtitle; a
notification carries an `event_id` that a receiver can use to drop duplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from transcriptarr.db.models import Job
from transcriptarr.db.outage import log_failure, until_written
from transcriptarr.queue.followups import FollowUpStore, NewFollowUp, StoredFollowUp

log = structlog.get_logger(__name__)

_DEFAULT_TIMEOUT_SECONDS = 60.0  # an action that does not say how long one call may take
_LEASE_SLACK_SECONDS = 60.0  # a claim outlives the longest attempt by this much (the result's write included)


class FollowUpError(Exception):
    """A follow-up failed; `retry=False` when trying again cannot help (bad key, unknown item)."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class Plan:
    """What a follow-up will need later: whom it tells (for people, never a secret) and its data (JSON)."""

    target: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Attempt:
    """Which try this is (1 first; counted when claimed, so a try cut short by a kill counts too)."""

    number: int
    job_id: int
    path: str | None


class FollowUp(Protocol):
    """May also have `attempts` (its own number of tries; default: FollowUps') and `timeout_seconds`
    (the longest one call may take; the claim on a follow-up outlives it)."""

    name: str  # the kind stored with each follow-up

    def wants(self, job: Job) -> bool:
        """Whether this follow-up has anything to do for this finished job."""
        ...

    def plan(self, job: Job) -> Plan:
        """Everything needed to do it later, from the job as stored (no I/O: runs in the job's transaction)."""
        ...

    async def perform(self, data: dict[str, Any], attempt: Attempt) -> None:
        """Do it; raise FollowUpError (or any exception) to have it tried again."""
        ...


class FollowUps:
    def __init__(
        self,
        actions: Sequence[FollowUp],
        store: FollowUpStore,
        *,
        node: str,
        attempts: int = 5,
        first_delay: float = 2.0,
        max_delay: float = 300.0,
        max_age: timedelta = timedelta(hours=24),
        concurrency: int = 16,
        poll_seconds: float = 60.0,
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self.actions = list(actions)
        self.store = store
        self.node = node
        # Unique per process: a claim names its runner, and the node prefix lets a restart take its claims back.
        self.claimer = f"{node}/{secrets.token_hex(6)}"
        self.attempts = attempts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.max_age = max_age
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.retention = retention
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._waiting: dict[int, datetime] = {}  # tried here, due again then (another node may take it first)
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._closed = False
        self._pruned_at: float | None = None

    def __bool__(self) -> bool:
        return bool(self.actions)

    @property
    def pending(self) -> int:
        """Follow-ups this runner is doing now or will try again itself."""
        return len(self._in_flight) + len(self._waiting)

    @property
    def attempt_seconds(self) -> float:
        """The longest one try may take: the slowest action's own timeout, and a little more."""
        timeouts = [float(getattr(action, "timeout_seconds", _DEFAULT_TIMEOUT_SECONDS)) for action in self.actions]
        return max(timeouts, default=_DEFAULT_TIMEOUT_SECONDS) + 5.0

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.attempt_seconds + _LEASE_SLACK_SECONDS)

    # --- deciding (inside the job's transaction) ---
    def plan(self, job: Job) -> list[NewFollowUp]:
        """The follow-ups this finished job has: what the queue stores with its result."""
        planned = []
        for action in self.actions:
            if action.wants(job):
                plan = action.plan(job)
                planned.append(NewFollowUp(action.name, plan.target, {"path": job.media_path, "data": plan.data}))
        return planned

    # --- doing ---
    def nudge(self, job: Job | None = None) -> None:
        """A job finished (its follow-ups are stored): look for due follow-ups now. Returns at once."""
        if self._closed or not self.actions:
            return
        self._wake.set()
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run(), name="followups")

    async def start(self) -> int:
        """At start-up: take back this node's unfinished attempts and do whatever is due. Returns how many
        follow-ups were pending."""
        released = await self.store.release_node(self.node)
        pending = await self.store.count_pending()
        if pending:
            log.info("followups_resumed", pending=pending, taken_back=released)
        self.nudge()
        return pending

    async def _run(self) -> None:
        while not self._closed:
            self._wake.clear()
            wait = self.poll_seconds
            try:
                await self._claim()
                await self._prune()
                if len(self._in_flight) < self.concurrency:  # else: an attempt that ends wakes this loop
                    wait = min(wait, await self._until_next_due())
            except Exception as exc:  # the database is away: try again soon
                log_failure(log, "followups_claim_failed", exc)
                wait = min(wait, 5.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _until_next_due(self) -> float:
        due = await self.store.next_due(self._kinds())
        if due is None:
            return self.poll_seconds
        # A follow-up due but not taken is locked by another runner's claim right now: look again shortly.
        return max(0.02, (due - self.store.now()).total_seconds())

    async def _claim(self) -> int:
        free = self.concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        asked_at = self.store.now()
        claimed = await self.store.claim(self.claimer, kinds=self._kinds(), limit=free, lease=self.lease)
        if len(claimed) < free:
            # Everything due and free was taken: ours that were due and are not here went to another node.
            taken = {followup.id for followup in claimed}
            for followup_id, due in list(self._waiting.items()):
                if due <= asked_at and followup_id not in taken:
                    del self._waiting[followup_id]
        for followup in claimed:
            self._waiting.pop(followup.id, None)
            task = asyncio.create_task(self._attempt(followup), name=f"followup-{followup.kind}-{followup.id}")
            self._in_flight[followup.id] = task
            task.add_done_callback(functools.partial(self._ended, followup.id))
        return len(claimed)

    def _ended(self, followup_id: int, _: asyncio.Task[None]) -> None:
        self._in_flight.pop(followup_id, None)
        self._wake.set()

    async def _attempt(self, followup: StoredFollowUp) -> None:
        path = followup.payload.get("path")
        fields: dict[str, Any] = {"job_id": followup.job_id, "path": path, "action": followup.kind}
        action = next((action for action in self.actions if action.name == followup.kind), None)
        age = self.store.now() - followup.created_at
        if action is None:
            reason = f"no '{followup.kind}' follow-up is configured on node {self.node} (its settings were removed?)"
            await self._give_up(followup, reason, fields)
            return
        if age > self.max_age:
            reason = f"not done within {_hours(self.max_age)} of the job's end; last error: {followup.last_error}"
            await self._give_up(followup, reason, fields)
            return
        data = followup.payload.get("data")
        try:
            async with asyncio.timeout(self.attempt_seconds):
                await action.perform(
                    data if isinstance(data, dict) else {}, Attempt(followup.attempts, followup.job_id, path)
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._failed(followup, action, exc, age, fields)
        else:
            await self._write(lambda: self.store.done(followup.id, self.claimer), followup)
            log.info("followup_done", **fields, attempt=followup.attempts)

    async def _failed(
        self, followup: StoredFollowUp, action: FollowUp, exc: Exception, age: timedelta, fields: dict[str, Any]
    ) -> None:
        if isinstance(exc, TimeoutError):
            error = f"did not finish within {self.attempt_seconds:g} s"
        else:
            error = str(exc) or type(exc).__name__
        attempts = int(getattr(action, "attempts", self.attempts))
        delay = min(self.first_delay * 2 ** max(0, followup.attempts - 1), self.max_delay)
        hopeless = not getattr(exc, "retry", True)
        out_of_time = age + timedelta(seconds=delay) > self.max_age
        again = not hopeless and followup.attempts < attempts and not out_of_time
        log.warning(
            "followup_failed",
            **fields,
            attempt=followup.attempts,
            error=error,
            next_try_seconds=round(delay, 2) if again else None,
        )
        if again:
            self._waiting[followup.id] = self.store.now() + timedelta(seconds=delay)
            await self._write(
                lambda: self.store.retry_later(followup.id, self.claimer, error, timedelta(seconds=delay)), followup
            )
            return
        if hopeless:
            reason = f"trying again cannot help: {error}"
        elif out_of_time:
            reason = f"not done within {_hours(self.max_age)} of the job's end: {error}"
        else:
            reason = f"gave up after {followup.attempts} attempts: {error}"
        await self._give_up(followup, reason, fields)

    async def _give_up(self, followup: StoredFollowUp, reason: str, fields: dict[str, Any]) -> None:
        self._waiting.pop(followup.id, None)
        await self._write(lambda: self.store.give_up(followup.id, self.claimer, reason), followup)
        log.warning("followup_given_up", **fields, attempts=followup.attempts, target=followup.target, reason=reason)

    async def _write(self, write: Callable[[], Awaitable[bool]], followup: StoredFollowUp) -> None:
        """Store how an attempt ended, waiting out a database outage (until then the claim keeps others off)."""
        await until_written(write, what="follow-up result", job_id=followup.job_id, followup_id=followup.id)

    def _kinds(self) -> set[str]:
        return {action.name for action in self.actions}

    async def _prune(self) -> None:
        """At most hourly: end what nobody does (of a kind no longer configured) and forget ended follow-ups
        past `retention`."""
        if self._pruned_at is not None and time.monotonic() - self._pruned_at < 3600:
            return
        self._pruned_at = time.monotonic()
        reason = f"not done within {_hours(self.max_age)} of the job's end: no node does this kind of follow-up now"
        if abandoned := await self.store.give_up_unclaimed(self.max_age + self.lease, reason):
            log.warning("followups_given_up_unclaimed", count=abandoned, reason=reason)
        await self.store.prune(self.retention)

    async def drain(self, seconds: float) -> None:
        """On shutdown: stop claiming, give attempts in flight `seconds`, hand the rest back (due at once)."""
        self._closed = True
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(BaseException):
                await self._pump
        running = dict(self._in_flight)
        self._waiting.clear()
        if not running:
            return
        _, left = await asyncio.wait(set(running.values()), timeout=seconds)
        for task in left:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*left, return_exceptions=True)
        cut = [followup_id for followup_id, task in running.items() if task in left]
        for followup_id in cut:
            with contextlib.suppress(Exception):  # not handed back: its claim runs out, or the next start takes it
                async with asyncio.timeout(2.0):
                    await self.store.release(followup_id, self.claimer)
        if cut:
            log.warning(
                "followups_handed_back", count=len(cut), reason="the service is stopping; done at the next start"
            )


def _hours(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:g} h" if hours >= 1 else f"{age.total_seconds():g} s"
