"""The persistent, prioritized job queue.

Guarantees, on SQLite, PostgreSQL and MariaDB alike:
- one live job per piece of work: `active_key` is unique and set only while a job
  is queued or processing, so a duplicate enqueue attaches to the existing job;
- a job is handed to one worker at a time: claims are atomic (`FOR UPDATE SKIP
  LOCKED` on PostgreSQL/MariaDB, a `BEGIN IMMEDIATE` write transaction on SQLite)
  and every later write checks that the worker still owns the job;
- nothing is lost when a worker dies: its lease runs out and the job is queued
  again, counting the attempt.

On PostgreSQL, whatever makes a job claimable now also notifies JOBS_CHANNEL in the
same transaction, so idle workers on every node start at once (queue/wakeups.py).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    Connection,
    Table,
    Update,
    and_,
    any_,
    bindparam,
    delete,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.instrumentation import ClassManager

from transcriptarr.db.database import Database
from transcriptarr.db.models import (
    ACTIVE_STATES,
    FINISHED_STATES,
    Job,
    JobState,
    Source,
    Stage,
    Task,
    utcnow,
)
from transcriptarr.queue.claim_order import ORDER_BY, in_claim_order
from transcriptarr.queue.followups import FollowUpPlanner, store_planned
from transcriptarr.queue.keys import default_priority, media_key
from transcriptarr.queue.stats import QueueStats, queue_stats

if TYPE_CHECKING:
    from transcriptarr.queue.pg_fastpath import PgFastPath

JOBS = cast(Table, Job.__table__)
COLUMNS = tuple(JOBS.c)
JOBS_CHANNEL = "transcriptarr_jobs"
_NOTIFY = text(f"SELECT pg_notify('{JOBS_CHANNEL}', '')")


class JobNotFound(LookupError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} does not exist")
        self.job_id = job_id


class InvalidTransition(ValueError):
    """A control request that does not fit the job's current state."""


@dataclass(frozen=True)
class NewJob:
    source: Source
    task: Task = Task.TRANSCRIBE
    media_path: str | None = None
    media_size: int | None = None
    media_mtime: float | None = None
    upload_path: str | None = None
    content_key: str | None = None
    source_language: str | None = None
    target_language: str | None = None
    priority: int | None = None
    quality: str = "balanced"
    media_duration: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        if self.content_key:
            return self.content_key
        if self.media_path is None:
            raise ValueError("a job needs a media_path or a content_key")
        return media_key(self.media_path, self.task, self.target_language)


@dataclass(frozen=True)
class EnqueueResult:
    job: Job
    created: bool
    reason: str


@dataclass(frozen=True)
class LeaseStatus:
    """What a worker learns when it reports: does it still own the job, should it stop?"""

    owned: bool
    cancel_requested: bool = False


@dataclass(frozen=True)
class FileOwners:
    """Whose files these are, for the sweep of leftover work and spool files (queue/leftovers.py)."""

    live_jobs: frozenset[int] = frozenset()  # of the job ids asked about: queued or processing
    live_uploads: frozenset[str] = frozenset()  # of the upload names asked about: read by a live job
    ended_uploads: frozenset[str] = frozenset()  # ...: named only by jobs that ended


def _job(row: Any) -> Job:
    return job_from_values(row._mapping)


@cache
def _job_class() -> ClassManager[Job]:
    configure_mappers()  # what `Job(...)` would do first
    return inspect(Job).class_manager


def job_from_values(values: Mapping[str, Any]) -> Job:
    """`Job(**values)`, less its per-attribute change tracking (68 -> 2 µs): jobs are
    read, never added to an ORM session. Both queue paths build their jobs here."""
    job = _job_class().new_instance()
    job.__dict__.update(values)
    return job


class JobQueue:
    def __init__(
        self,
        db: Database,
        *,
        lease_seconds: float = 60.0,
        max_attempts: int = 4,
        backoff_seconds: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.now = clock
        self._build_claim_statements()
        self._notifies = db.backend.name == "postgresql"
        # PostgreSQL: claim and complete, the hot path, go straight to asyncpg (pg_fastpath.py).
        self._fast: PgFastPath | None = None
        if db.backend.name == "postgresql":
            from transcriptarr.queue.pg_fastpath import fast_path  # asyncpg is only there for PostgreSQL

            self._fast = fast_path(db)

    # --- enqueue ---
    async def enqueue(self, new: NewJob) -> EnqueueResult:
        """Queue work once: attach to a live duplicate, skip work already done."""
        key = new.key()
        for _ in range(5):
            done = await self.db.read(lambda conn: self._completed_unchanged(conn, key, new))
            if done is not None:
                return EnqueueResult(done, False, f"already completed as job {done.id}; file unchanged")
            try:
                job = await self.db.write(lambda conn: self._insert(conn, new, key))
                return EnqueueResult(job, True, "queued")
            except IntegrityError:
                live = await self.db.read(lambda conn: _live(conn, key))
                if live is not None:
                    return EnqueueResult(live, False, f"already {live.state} as job {live.id}")
            # The live duplicate finished between our insert and our look-up: try again.
        raise RuntimeError(f"could not enqueue {new.media_path or key}: the job kept changing state")

    def _insert(self, conn: Connection, new: NewJob, key: str) -> Job:
        now = self.now()
        values = {
            "state": JobState.QUEUED,
            "stage": Stage.PENDING,
            "source": new.source,
            "priority": new.priority if new.priority is not None else default_priority(new.source),
            "media_path": new.media_path,
            "media_size": new.media_size,
            "media_mtime": new.media_mtime,
            "upload_path": new.upload_path,
            "content_key": key,
            "active_key": key,
            "task": new.task,
            "source_language": new.source_language,
            "target_language": new.target_language,
            "quality": new.quality,
            "options": new.options,
            "details": new.details,
            "progress": 0.0,
            "created_at": now,
            "updated_at": now,
            "attempts": 0,
            "max_attempts": self.max_attempts,
            "next_attempt_at": now,
            "cancel_requested": False,
            "error_permanent": False,
            "media_duration": new.media_duration,
        }
        primary_key = conn.execute(JOBS.insert().values(**values)).inserted_primary_key
        assert primary_key is not None
        self._announce(conn)
        return _get(conn, int(primary_key[0]))

    def _announce(self, conn: Connection) -> None:
        """A job became claimable: on PostgreSQL, tell the listening workers of every node, at commit."""
        if self._notifies:
            conn.execute(_NOTIFY)

    @staticmethod
    def _completed_unchanged(conn: Connection, key: str, new: NewJob) -> Job | None:
        if new.media_path is None or new.media_size is None or new.media_mtime is None:
            return None
        query = (
            select(*COLUMNS)
            .where(
                JOBS.c.content_key == key,
                JOBS.c.state == JobState.COMPLETED,
                JOBS.c.media_size == new.media_size,
                JOBS.c.media_mtime == new.media_mtime,
            )
            .order_by(JOBS.c.id.desc())
            .limit(1)
        )
        row = conn.execute(query).first()
        return None if row is None else _job(row)

    # --- claim ---
    # Claiming is the hot path: its statements are built once, with bound
    # parameters, so SQLAlchemy's compiled cache serves every later call.
    def _build_claim_statements(self) -> None:
        claimable = (
            select(JOBS.c.id)
            .where(JOBS.c.state == JobState.QUEUED, JOBS.c.next_attempt_at <= bindparam("now"))
            .order_by(*ORDER_BY)
            .limit(bindparam("limit"))
        )
        if self.db.backend.skip_locked:
            claimable = claimable.with_for_update(skip_locked=True)
        claimed = {
            "state": JobState.PROCESSING,
            "stage": Stage.PENDING,
            "worker": bindparam("worker"),
            "node": bindparam("node"),
            "progress": 0.0,
            "attempts": JOBS.c.attempts + 1,
            "started_at": bindparam("now"),
            "updated_at": bindparam("now"),
            "heartbeat_at": bindparam("now"),
            "lease_expires_at": bindparam("lease_until"),
            "cancel_requested": False,
        }
        self._claimable = claimable
        # MariaDB has no UPDATE ... RETURNING: lock the ids, update them, read them back.
        self._claim_ids = update(JOBS).where(JOBS.c.id.in_(bindparam("ids", expanding=True))).values(**claimed)
        if self.db.backend.name == "postgresql":
            # `id = ANY(ARRAY(...))`, not `id IN (...)`: once the table has statistics, the
            # generic plan of a prepared `IN` (LIMIT $n unknown, guessed at 10% of the rows)
            # is a hash semi-join over a sequential scan of the whole table, every claim.
            chosen = JOBS.c.id == any_(func.array(claimable.scalar_subquery()))
        else:
            chosen = JOBS.c.id.in_(claimable.scalar_subquery())
        self._claim_returning = update(JOBS).where(chosen).values(**claimed).returning(*COLUMNS)
        self._read_ids = select(*COLUMNS).where(JOBS.c.id.in_(bindparam("ids", expanding=True)))
        self._complete_statements: dict[tuple[str, ...], Update] = {}

    async def claim(self, worker: str, node: str, limit: int = 1) -> list[Job]:
        """Atomically take up to `limit` jobs, in the claim order (queue/claim_order.py)."""
        if self._fast is not None:
            now = self.now()
            jobs = await self._fast.claim(now, now + self.lease, worker, node, limit)
        else:
            # One UPDATE ... RETURNING, except on MariaDB (three statements).
            write = self.db.write if self.db.backend.name == "mariadb" else self.db.write_one
            jobs = await write(lambda conn: self._claim(conn, worker, node, limit))
        return in_claim_order(jobs)

    def _claim(self, conn: Connection, worker: str, node: str, limit: int) -> list[Job]:
        now = self.now()
        params = {"now": now, "lease_until": now + self.lease, "worker": worker, "node": node, "limit": limit}
        if self.db.backend.name == "mariadb":
            ids = list(conn.execute(self._claimable, params).scalars().all())
            if not ids:
                return []
            conn.execute(self._claim_ids, {**params, "ids": ids})
            rows = conn.execute(self._read_ids, {"ids": ids}).all()
        else:
            rows = conn.execute(self._claim_returning, params).all()
        return [_job(row) for row in rows]

    # --- while working ---
    _owned_bound = and_(
        JOBS.c.id == bindparam("owned_id"),
        JOBS.c.worker == bindparam("owned_worker"),
        JOBS.c.state == JobState.PROCESSING,
    )

    @staticmethod
    def _owned(job_id: int, worker: str) -> Any:
        return and_(JOBS.c.id == job_id, JOBS.c.worker == worker, JOBS.c.state == JobState.PROCESSING)

    async def report(
        self,
        job_id: int,
        worker: str,
        *,
        progress: float | None = None,
        stage: Stage | None = None,
        **fields: Any,
    ) -> LeaseStatus:
        """Heartbeat: renew the lease, store progress; tells the worker to stop when cancelled."""
        now = self.now()
        values: dict[str, Any] = {
            "heartbeat_at": now,
            "lease_expires_at": now + self.lease,
            "updated_at": now,
            **fields,
        }
        if progress is not None:
            values["progress"] = max(0.0, min(100.0, progress))
        if stage is not None:
            values["stage"] = stage

        renew = update(JOBS).where(self._owned(job_id, worker)).values(**values)

        def tx(conn: Connection) -> LeaseStatus:
            result = conn.execute(renew)
            if result.rowcount != 1:
                return LeaseStatus(owned=False)
            cancel = conn.execute(select(JOBS.c.cancel_requested).where(JOBS.c.id == job_id)).scalar_one()
            return LeaseStatus(owned=True, cancel_requested=bool(cancel))

        def one_statement(conn: Connection) -> LeaseStatus:
            row = conn.execute(renew.returning(JOBS.c.cancel_requested)).first()
            return LeaseStatus(owned=False) if row is None else LeaseStatus(owned=True, cancel_requested=bool(row[0]))

        if self.db.backend.name == "mariadb":  # no UPDATE ... RETURNING
            return await self.db.write(tx)
        return await self.db.write_one(one_statement)

    async def complete(
        self,
        job_id: int,
        worker: str,
        *,
        result_path: str | None = None,
        result_text: str | None = None,
        processing_seconds: float | None = None,
        followups: FollowUpPlanner | None = None,
        **fields: Any,
    ) -> bool:
        """Record success; False when the worker had lost the job (its result is not counted).

        `followups`: asked, in the same transaction, which follow-ups the completed job has; they
        are stored with the result (queue/followups.py)."""
        now = self.now()
        values = {
            "state": JobState.COMPLETED,
            "stage": Stage.DONE,
            "progress": 100.0,
            "updated_at": now,
            "result_path": result_path,
            "result_text": result_text,
            "processing_seconds": processing_seconds,
            "error": None,
            **self._finished(now),
            **fields,
        }
        if followups is not None:
            return await self.db.write(lambda conn: self._complete_with(conn, job_id, worker, values, followups))
        if self._fast is not None:
            done = await self._fast.update_owned(job_id, worker, values)
            if done is not None:
                return done
        # Built once per set of columns, with bound values: a worker completes often.
        columns = tuple(sorted(values))
        statement = self._complete_statements.get(columns)
        if statement is None:
            statement = update(JOBS).where(self._owned_bound).values({c: bindparam(f"v_{c}") for c in columns})
            self._complete_statements[columns] = statement
        params = {"owned_id": job_id, "owned_worker": worker, **{f"v_{c}": v for c, v in values.items()}}
        return await self.db.write_one(lambda conn: conn.execute(statement, params).rowcount == 1)

    def _complete_with(
        self, conn: Connection, job_id: int, worker: str, values: dict[str, Any], followups: FollowUpPlanner
    ) -> bool:
        if conn.execute(update(JOBS).where(self._owned(job_id, worker)).values(**values)).rowcount != 1:
            return False
        store_planned(conn, _get(conn, job_id), followups, values["updated_at"])
        return True

    async def _update_owned(self, job_id: int, worker: str, values: dict[str, Any]) -> bool:
        def tx(conn: Connection) -> bool:
            return bool(conn.execute(update(JOBS).where(self._owned(job_id, worker)).values(**values)).rowcount == 1)

        return await self.db.write_one(tx)

    async def fail(
        self,
        job_id: int,
        worker: str,
        error: str,
        *,
        permanent: bool,
        followups: FollowUpPlanner | None = None,
        counted: bool = True,
        **fields: Any,
    ) -> JobState | None:
        """A failed attempt: retry later with backoff, or fail for good. None if not owned.

        `counted=False`: the attempt is given back (the service, not the job, was short of resources).

        `followups`: for a job that failed for good, asked in the same transaction which follow-ups apply."""

        def tx(conn: Connection) -> JobState | None:
            now = self.now()
            row = conn.execute(select(JOBS.c.attempts, JOBS.c.max_attempts).where(self._owned(job_id, worker))).first()
            if row is None:
                return None
            attempts, max_attempts = row
            if not counted:
                attempts = max(0, attempts - 1)
                fields["attempts"] = attempts
            values: dict[str, Any]
            if permanent or attempts >= max_attempts:
                state, values = JobState.FAILED, self._finished(now)
            else:
                delay = self.backoff_seconds * 2 ** max(0, attempts - 1)
                state = JobState.QUEUED
                values = {"next_attempt_at": now + timedelta(seconds=delay), **self._unowned()}
                if delay <= 0:
                    self._announce(conn)
            values.update(state=state, error=error, error_permanent=permanent, updated_at=now, **fields)
            conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(**values))
            if followups is not None and state == JobState.FAILED:
                store_planned(conn, _get(conn, job_id), followups, now)
            return state

        return await self.db.write(tx)

    async def release(self, job_id: int, worker: str) -> bool:
        """Hand a job back without counting the attempt (graceful shutdown)."""
        now = self.now()
        values = {
            "state": JobState.QUEUED,
            "attempts": JOBS.c.attempts - 1,
            "next_attempt_at": now,
            "updated_at": now,
            **self._unowned(),
        }

        def tx(conn: Connection) -> bool:
            released = conn.execute(update(JOBS).where(self._owned(job_id, worker)).values(**values)).rowcount == 1
            if released:
                self._announce(conn)
            return bool(released)

        return await self.db.write(tx)

    async def acknowledge_cancel(self, job_id: int, worker: str) -> bool:
        now = self.now()
        values = {
            "state": JobState.CANCELLED,
            "error": "cancelled on request while processing",
            "updated_at": now,
            **self._finished(now),
        }
        return await self._update_owned(job_id, worker, values)

    @staticmethod
    def _unowned() -> dict[str, Any]:
        return {"worker": None, "lease_expires_at": None, "stage": Stage.PENDING, "progress": 0.0}

    @staticmethod
    def _finished(now: datetime) -> dict[str, Any]:
        return {"active_key": None, "finished_at": now, "lease_expires_at": None}

    # --- recovery ---
    async def recover_expired(self, *, alive: Collection[str] = ()) -> int:
        """Queue again (or fail, after too many attempts) jobs whose worker stopped renewing.

        `alive`: this node's workers still running their job. Their lease is not judged from the
        database: a stall may have kept their heartbeats from being written (queue/maintenance.py)."""
        expired = JOBS.c.lease_expires_at < self.now()
        if alive:
            expired = and_(expired, JOBS.c.worker.not_in(sorted(alive)))
        return await self._recover(expired, "its worker stopped responding")

    async def recover_node(self, node: str) -> int:
        """At start-up: whatever this node was processing when it stopped is queued again."""
        return await self._recover(JOBS.c.node == node, f"node {node} restarted while processing it")

    async def _recover(self, condition: Any, why: str) -> int:
        now = self.now()
        lost = and_(JOBS.c.state == JobState.PROCESSING, condition)

        def tx(conn: Connection) -> int:
            exhausted = conn.execute(
                update(JOBS)
                .where(lost, JOBS.c.attempts >= JOBS.c.max_attempts)
                .values(
                    state=JobState.FAILED,
                    error=f"gave up after {self.max_attempts} attempts: {why}",
                    error_permanent=False,
                    updated_at=now,
                    **self._finished(now),
                )
            )
            requeued = conn.execute(
                update(JOBS)
                .where(lost)
                .values(state=JobState.QUEUED, next_attempt_at=now, updated_at=now, error=why, **self._unowned())
            )
            if requeued.rowcount:
                self._announce(conn)
            return int(exhausted.rowcount) + int(requeued.rowcount)

        return await self.db.write(tx)

    # --- control ---
    async def get(self, job_id: int) -> Job:
        return await self.db.read(lambda conn: _get(conn, job_id))

    async def cancel(self, job_id: int, reason: str = "cancelled on request") -> JobState:
        """Queued: cancelled at once. Processing: its worker stops at the next checkpoint."""
        now = self.now()

        def tx(conn: Connection) -> JobState:
            done = conn.execute(
                update(JOBS)
                .where(JOBS.c.id == job_id, JOBS.c.state == JobState.QUEUED)
                .values(state=JobState.CANCELLED, error=reason, updated_at=now, **self._finished(now))
            )
            if done.rowcount == 1:
                return JobState.CANCELLED
            asked = conn.execute(
                update(JOBS)
                .where(JOBS.c.id == job_id, JOBS.c.state == JobState.PROCESSING)
                .values(cancel_requested=True, updated_at=now)
            )
            if asked.rowcount == 1:
                return JobState.PROCESSING
            job = _get(conn, job_id)
            raise InvalidTransition(f"job {job_id} is already {job.state}; nothing to cancel")

        return await self.db.write(tx)

    async def retry(self, job_id: int) -> Job:
        """Queue a failed or cancelled job again, with a fresh attempt count."""
        now = self.now()

        def tx(conn: Connection) -> Job:
            job = _get(conn, job_id)
            if job.state not in (JobState.FAILED, JobState.CANCELLED):
                raise InvalidTransition(f"job {job_id} is {job.state}; only failed or cancelled jobs can be retried")
            conn.execute(
                update(JOBS)
                .where(JOBS.c.id == job_id)
                .values(
                    state=JobState.QUEUED,
                    active_key=JOBS.c.content_key,
                    attempts=0,
                    error=None,
                    error_permanent=False,
                    cancel_requested=False,
                    finished_at=None,
                    next_attempt_at=now,
                    updated_at=now,
                    **self._unowned(),
                )
            )
            self._announce(conn)
            return _get(conn, job_id)

        try:
            return await self.db.write(tx)
        except IntegrityError:
            job = await self.get(job_id)
            live = await self.db.read(lambda conn: _live(conn, job.content_key))
            other = f"job {live.id}" if live else "another job"
            raise InvalidTransition(f"the same work is already queued as {other}") from None

    async def set_priority(self, job_id: int, priority: int) -> Job:
        def tx(conn: Connection) -> Job:
            conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(priority=priority, updated_at=self.now()))
            return _get(conn, job_id)

        return await self.db.write(tx)

    async def promote(self, job_id: int, priority: int, details: dict[str, Any]) -> Job:
        """A queued job that someone else also asked for: raise it to `priority` (never lower it) and
        merge `details` into its own (e.g. which media-server item to refresh). Other states: unchanged."""

        def tx(conn: Connection) -> Job:
            job = _get(conn, job_id)
            if job.state == JobState.QUEUED:
                conn.execute(
                    update(JOBS)
                    .where(JOBS.c.id == job_id, JOBS.c.state == JobState.QUEUED)
                    .values(
                        priority=max(priority, job.priority),
                        details={**(job.details or {}), **details},
                        updated_at=self.now(),
                    )
                )
            return _get(conn, job_id)

        return await self.db.write(tx)

    async def list_jobs(
        self,
        *,
        states: Sequence[str] = (),
        sources: Sequence[str] = (),
        limit: int = 50,
        offset: int = 0,
    ) -> list[Job]:
        """Newest first."""
        query = select(*COLUMNS).order_by(JOBS.c.id.desc()).limit(limit).offset(offset)
        if states:
            query = query.where(JOBS.c.state.in_(list(states)))
        if sources:
            query = query.where(JOBS.c.source.in_(list(sources)))
        return await self.db.read(lambda conn: [_job(row) for row in conn.execute(query).all()])

    async def find_result(self, content_key: str) -> Job | None:
        """The newest completed job for this work (stored results answer repeats at once)."""
        query = (
            select(*COLUMNS)
            .where(JOBS.c.content_key == content_key, JOBS.c.state == JobState.COMPLETED)
            .order_by(JOBS.c.id.desc())
            .limit(1)
        )

        def tx(conn: Connection) -> Job | None:
            row = conn.execute(query).first()
            return None if row is None else _job(row)

        return await self.db.read(tx)

    async def find_live(self, content_key: str) -> Job | None:
        return await self.db.read(lambda conn: _live(conn, content_key))

    async def next_up(self, limit: int) -> list[Job]:
        """The first `limit` queued jobs in the claim order (those waiting out a retry delay included),
        asked of the database: ix_jobs_claim serves it, however many are queued."""
        query = select(*COLUMNS).where(JOBS.c.state == JobState.QUEUED).order_by(*ORDER_BY).limit(limit)
        return await self.db.read(lambda conn: [_job(row) for row in conn.execute(query).all()])

    async def latest(self, content_key: str) -> Job | None:
        """The newest job for this work, whatever its state."""
        query = select(*COLUMNS).where(JOBS.c.content_key == content_key).order_by(JOBS.c.id.desc()).limit(1)

        def tx(conn: Connection) -> Job | None:
            row = conn.execute(query).first()
            return None if row is None else _job(row)

        return await self.db.read(tx)

    async def live_for_media(self, path: str, *, folder: bool = False) -> list[Job]:
        """The queued and processing jobs for the library file `path`, or for every file under it with
        `folder`, oldest first. Jobs of uploads (they work on the uploaded audio, not the file) are left out."""
        where = (
            JOBS.c.media_path.startswith(path.rstrip("/") + "/", autoescape=True)
            if folder
            else JOBS.c.media_path == path
        )
        query = (
            select(*COLUMNS)
            .where(JOBS.c.state.in_(list(ACTIVE_STATES)), JOBS.c.upload_path.is_(None), where)
            .order_by(JOBS.c.id)
        )
        return await self.db.read(lambda conn: [_job(row) for row in conn.execute(query).all()])

    async def stats(self, *, workers: int, now: datetime | None = None) -> QueueStats:
        """Counts, throughput and an ETA for `workers` live workers (queue/stats.py)."""
        return await queue_stats(self.db, now or self.now(), workers=workers)

    async def file_owners(self, *, job_ids: Collection[int] = (), upload_names: Collection[str] = ()) -> FileOwners:
        """Which of these jobs are queued or processing, and which uploads (file names) live or ended jobs read.

        Names, not paths: another node may reach the same spool under another path."""
        ids, names = sorted(set(job_ids)), sorted(set(upload_names))
        live = JOBS.c.state.in_(list(ACTIVE_STATES))

        def tx(conn: Connection) -> FileOwners:
            live_ids: set[int] = set()
            for start in range(0, len(ids), 500):
                batch = ids[start : start + 500]
                live_ids.update(conn.execute(select(JOBS.c.id).where(JOBS.c.id.in_(batch), live)).scalars())
            read_live: set[str] = set()
            read_ended: set[str] = set()
            for start in range(0, len(names), 50):  # a LIKE each: a few per query
                wanted = names[start : start + 50]
                named = or_(*(JOBS.c.upload_path.endswith(name, autoescape=True) for name in wanted))
                for path, state in conn.execute(select(JOBS.c.upload_path, JOBS.c.state).where(named)):
                    name = PurePath(path).name
                    if name in wanted:
                        (read_live if state in ACTIVE_STATES else read_ended).add(name)
            return FileOwners(frozenset(live_ids), frozenset(read_live), frozenset(read_ended - read_live))

        if not ids and not names:
            return FileOwners()
        return await self.db.read(tx)

    async def cleanup(self, *, job_retention: timedelta, result_retention: timedelta) -> int:
        """Delete finished jobs past retention; Bazarr results live at least `result_retention`."""
        now = self.now()
        old_job = JOBS.c.finished_at < now - job_retention
        old_result = JOBS.c.finished_at < now - max(job_retention, result_retention)
        is_bazarr = JOBS.c.source == Source.BAZARR
        condition = and_(
            JOBS.c.state.in_(list(FINISHED_STATES)),
            or_(and_(~is_bazarr, old_job), and_(is_bazarr, old_result)),
        )
        return await self.db.write(lambda conn: int(conn.execute(delete(JOBS).where(condition)).rowcount))


def _get(conn: Connection, job_id: int) -> Job:
    row = conn.execute(select(*COLUMNS).where(JOBS.c.id == job_id)).first()
    if row is None:
        raise JobNotFound(job_id)
    return _job(row)


def _live(conn: Connection, key: str) -> Job | None:
    row = conn.execute(select(*COLUMNS).where(JOBS.c.active_key == key)).first()
    return None if row is None else _job(row)
