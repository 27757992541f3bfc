"""The stored follow-ups of finished jobs: every SQL statement on the `followups` table.

A follow-up is plain data: a `kind` string, a `target` for people and a JSON `payload`
with everything needed to do it later (integrations/followups.py knows the kinds;
this module never does). The queue stores them with the job's result, in the same
transaction (`store_planned`, called by `JobQueue.complete` and `JobQueue.fail`):
a result stored means its follow-ups are stored too, whatever happens next.

Claims work like the jobs' leases: a claim sets `claimed_by` and pushes
`next_attempt_at` one lease ahead, so nobody else sees the follow-up as due while
an attempt runs (`FOR UPDATE SKIP LOCKED` on PostgreSQL and MariaDB, a `BEGIN
IMMEDIATE` write transaction on SQLite). A runner that dies leaves it due again at
the end of the lease; a node that restarts takes its own claims back at once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Connection, Table, delete, func, select, update

from transcriptarr.db.database import Database
from transcriptarr.db.models import FollowUpRecord, FollowUpState, Job, utcnow

log = structlog.get_logger(__name__)

FOLLOWUPS = cast(Table, FollowUpRecord.__table__)
_COLUMNS = tuple(FOLLOWUPS.c)
_ERROR_CHARS = 2000  # a last error is one line for people; bound what a chatty server can make us store


@dataclass(frozen=True)
class NewFollowUp:
    """One follow-up to store: what kind, whom it tells (for people) and everything it needs later."""

    kind: str
    target: str
    payload: dict[str, Any] = field(default_factory=dict)


# Given the job as it stands once its result is written (state, finished_at, details...), the follow-ups
# that apply. Called inside the queue's transaction: it must be quick and must not do I/O.
FollowUpPlanner = Callable[[Job], Sequence[NewFollowUp]]


@dataclass(frozen=True)
class StoredFollowUp:
    id: int
    job_id: int
    kind: str
    target: str
    payload: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: datetime
    claimed_by: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime

    def summary(self) -> dict[str, Any]:
        """What a person wants to see of it (job details, `transcriptarr jobs`)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat() if self.state == FollowUpState.PENDING else None,
            "last_error": self.last_error,
        }


def _stored(row: Any) -> StoredFollowUp:
    return StoredFollowUp(**row._mapping)


def store_planned(conn: Connection, job: Job, planner: FollowUpPlanner, now: datetime) -> int:
    """Inside the transaction that stores `job`'s result: store the follow-ups `planner` says apply.

    A planner that fails (a bug) costs its follow-ups, never the job's result: logged, nothing stored."""
    try:
        planned = list(planner(job))
    except Exception as exc:
        log.error("followups_not_planned", job_id=job.id, path=job.media_path, error=f"{type(exc).__name__}: {exc}")
        return 0
    if planned:
        conn.execute(
            FOLLOWUPS.insert(),
            [
                {
                    "job_id": job.id,
                    "kind": new.kind,
                    "target": new.target,
                    "payload": new.payload,
                    "state": FollowUpState.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "claimed_by": None,
                    "last_error": None,
                    "created_at": now,
                    "updated_at": now,
                }
                for new in planned
            ],
        )
    return len(planned)


class FollowUpStore:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.now = clock

    async def add(self, job: Job, planned: Sequence[NewFollowUp]) -> int:
        """Store follow-ups for a job outside its completion (a command, a test)."""
        return await self.db.write(lambda conn: store_planned(conn, job, lambda _: planned, self.now()))

    async def claim(
        self, claimer: str, *, kinds: Collection[str], limit: int, lease: timedelta
    ) -> list[StoredFollowUp]:
        """Take up to `limit` due follow-ups of these kinds (those the runner can do), oldest due first.
        Each attempt taken is counted now: a runner killed in mid-call may have done it."""
        now = self.now()
        due = (
            select(FOLLOWUPS.c.id)
            .where(
                FOLLOWUPS.c.state == FollowUpState.PENDING,
                FOLLOWUPS.c.next_attempt_at <= now,
                FOLLOWUPS.c.kind.in_(sorted(kinds)),
            )
            .order_by(FOLLOWUPS.c.next_attempt_at, FOLLOWUPS.c.id)
            .limit(limit)
        )
        if self.db.backend.skip_locked:
            due = due.with_for_update(skip_locked=True)

        def tx(conn: Connection) -> list[StoredFollowUp]:
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            conn.execute(
                update(FOLLOWUPS)
                .where(FOLLOWUPS.c.id.in_(ids))
                .values(
                    claimed_by=claimer,
                    attempts=FOLLOWUPS.c.attempts + 1,
                    next_attempt_at=now + lease,
                    updated_at=now,
                )
            )
            rows = conn.execute(select(*_COLUMNS).where(FOLLOWUPS.c.id.in_(ids)).order_by(FOLLOWUPS.c.id))
            return [_stored(row) for row in rows]

        return await self.db.write(tx)

    def _mine(self, followup_id: int, claimer: str) -> Any:
        return (
            (FOLLOWUPS.c.id == followup_id)
            & (FOLLOWUPS.c.claimed_by == claimer)
            & (FOLLOWUPS.c.state == FollowUpState.PENDING)
        )

    async def done(self, followup_id: int, claimer: str) -> bool:
        """Mark it done; False when the claim had passed to another runner (its result is theirs to store)."""
        values = {"state": FollowUpState.DONE, "claimed_by": None, "last_error": None, "updated_at": self.now()}
        return await self._settle(followup_id, claimer, values)

    async def retry_later(self, followup_id: int, claimer: str, error: str, delay: timedelta) -> bool:
        now = self.now()
        values = {"next_attempt_at": now + delay, "claimed_by": None, "last_error": error[:_ERROR_CHARS]}
        return await self._settle(followup_id, claimer, {**values, "updated_at": now})

    async def give_up(self, followup_id: int, claimer: str, reason: str) -> bool:
        values = {"state": FollowUpState.GIVEN_UP, "claimed_by": None, "last_error": reason[:_ERROR_CHARS]}
        return await self._settle(followup_id, claimer, {**values, "updated_at": self.now()})

    async def release(self, followup_id: int, claimer: str) -> bool:
        """Hand an attempt that was cut short (a shutdown) back: due at once, the attempt not counted."""
        now = self.now()
        values = {"next_attempt_at": now, "claimed_by": None, "attempts": FOLLOWUPS.c.attempts - 1, "updated_at": now}
        return await self._settle(followup_id, claimer, values)

    async def _settle(self, followup_id: int, claimer: str, values: Mapping[str, Any]) -> bool:
        statement = update(FOLLOWUPS).where(self._mine(followup_id, claimer)).values(**values)
        return await self.db.write(lambda conn: conn.execute(statement).rowcount == 1)

    async def release_node(self, node: str) -> int:
        """At start-up: the attempts this node was making when it stopped are due again at once."""
        now = self.now()
        mine = FOLLOWUPS.c.claimed_by.startswith(f"{node}/", autoescape=True)
        statement = (
            update(FOLLOWUPS)
            .where(FOLLOWUPS.c.state == FollowUpState.PENDING, mine)
            .values(next_attempt_at=now, claimed_by=None, updated_at=now)
        )
        return await self.db.write(lambda conn: int(conn.execute(statement).rowcount))

    async def next_due(self, kinds: Collection[str]) -> datetime | None:
        """When the earliest pending follow-up of these kinds is due (claimed ones: when their lease ends)."""
        query = select(func.min(FOLLOWUPS.c.next_attempt_at)).where(
            FOLLOWUPS.c.state == FollowUpState.PENDING, FOLLOWUPS.c.kind.in_(sorted(kinds))
        )
        return await self.db.read(lambda conn: conn.execute(query).scalar())

    async def count_pending(self) -> int:
        query = select(func.count()).select_from(FOLLOWUPS).where(FOLLOWUPS.c.state == FollowUpState.PENDING)
        return await self.db.read(lambda conn: int(conn.execute(query).scalar_one()))

    async def for_job(self, job_id: int) -> list[StoredFollowUp]:
        query = select(*_COLUMNS).where(FOLLOWUPS.c.job_id == job_id).order_by(FOLLOWUPS.c.id)
        return await self.db.read(lambda conn: [_stored(row) for row in conn.execute(query)])

    async def recent(self, *, states: Sequence[str] = (), limit: int = 100) -> list[StoredFollowUp]:
        """Newest first."""
        query = select(*_COLUMNS).order_by(FOLLOWUPS.c.id.desc()).limit(limit)
        if states:
            query = query.where(FOLLOWUPS.c.state.in_(list(states)))
        return await self.db.read(lambda conn: [_stored(row) for row in conn.execute(query)])

    async def give_up_unclaimed(self, older_than: timedelta, reason: str) -> int:
        """Give up pending follow-ups created longer ago than `older_than` and not being tried now: those of
        a kind no node does any more (its setting removed), which no runner would ever claim."""
        now = self.now()
        statement = (
            update(FOLLOWUPS)
            .where(
                FOLLOWUPS.c.state == FollowUpState.PENDING,
                FOLLOWUPS.c.created_at < now - older_than,
                FOLLOWUPS.c.next_attempt_at <= now,  # not claimed (a claim pushes it a lease ahead)
            )
            .values(state=FollowUpState.GIVEN_UP, claimed_by=None, last_error=reason, updated_at=now)
        )
        return await self.db.write(lambda conn: int(conn.execute(statement).rowcount))

    async def prune(self, older_than: timedelta) -> int:
        """Forget follow-ups that ended (done or given up) longer ago than `older_than`."""
        ended = FOLLOWUPS.c.state.in_([FollowUpState.DONE, FollowUpState.GIVEN_UP])
        statement = delete(FOLLOWUPS).where(ended, FOLLOWUPS.c.updated_at < self.now() - older_than)
        return await self.db.write(lambda conn: int(conn.execute(statement).rowcount))
