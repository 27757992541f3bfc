"""Tables: the job queue and the registry of running nodes and workers.

The schema is owned by the Alembic migrations in `migrations/versions`; these
classes describe the same tables for queries, and a test checks they agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Task is policy (what Whisper is asked to do); re-exported here for the Job.task column's readers.
from transcriptarr.policy.plans import Task as Task


class JobState(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATES = (JobState.QUEUED, JobState.PROCESSING)
FINISHED_STATES = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


class Stage(StrEnum):
    PENDING = "pending"
    PROBING = "probing"
    EXTRACTING_AUDIO = "extracting_audio"
    DETECTING_LANGUAGE = "detecting_language"
    TRANSCRIBING = "transcribing"
    TRANSLATING = "translating"
    WRITING = "writing"
    DONE = "done"


class Source(StrEnum):
    """Where a job came from; also its default priority rank (see queue/keys.py)."""

    BAZARR = "bazarr"
    WEBHOOK = "webhook"
    MANUAL = "manual"
    WATCH = "watch"
    SCAN = "scan"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python, naive UTC in the database (same on every backend).

    MariaDB's DATETIME drops fractions of a second unless asked (fsp=6); leases
    and ordering need them.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class OrderTerm(NamedTuple):
    column: str
    descending: bool = False


# The claim order: which queued job a worker takes first (highest priority, then oldest, then lowest id).
# Written only here: ix_jobs_claim below follows it, and queue/claim_order.py makes it the ORDER BY of the
# claim (SQLAlchemy and PostgreSQL's fast path) and of the status page's "next up". A change to it needs a
# migration that rebuilds ix_jobs_claim (tests/queue/test_claim_order.py checks the migrated index).
CLAIM_ORDER: tuple[OrderTerm, ...] = (
    OrderTerm("priority", descending=True),
    OrderTerm("created_at"),
    OrderTerm("id"),
)


def _claim_index_columns() -> list[Any]:
    """ix_jobs_claim's columns: the queued jobs (state first), then the claim order."""
    return ["state", *(text(f"{term.column} DESC") if term.descending else term.column for term in CLAIM_ORDER)]


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default=JobState.QUEUED)
    stage: Mapped[str] = mapped_column(String(24), default=Stage.PENDING)
    source: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)

    # What to work on: a library file or an uploaded (spooled) audio file.
    media_path: Mapped[str | None] = mapped_column(Text)
    media_size: Mapped[int | None] = mapped_column(BigInteger)
    media_mtime: Mapped[float | None] = mapped_column(Float)
    upload_path: Mapped[str | None] = mapped_column(Text)

    # Deduplication: content_key identifies the work; active_key equals it while
    # the job is queued or processing and is NULL afterwards, so a unique index
    # forbids two live jobs for the same work on every backend.
    content_key: Mapped[str] = mapped_column(String(64))
    active_key: Mapped[str | None] = mapped_column(String(64), unique=True)

    task: Mapped[str] = mapped_column(String(16), default=Task.TRANSCRIBE)
    source_language: Mapped[str | None] = mapped_column(String(16))
    language_probability: Mapped[float | None] = mapped_column(Float)
    target_language: Mapped[str | None] = mapped_column(String(16))
    quality: Mapped[str] = mapped_column(String(16), default="balanced")
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    progress: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=4)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    node: Mapped[str | None] = mapped_column(String(128))
    worker: Mapped[str | None] = mapped_column(String(160))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)

    error: Mapped[str | None] = mapped_column(Text)
    error_permanent: Mapped[bool] = mapped_column(Boolean, default=False)
    result_path: Mapped[str | None] = mapped_column(Text)
    result_text: Mapped[str | None] = mapped_column(Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb"))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    media_duration: Mapped[float | None] = mapped_column(Float)
    processing_seconds: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        # The claim query walks it in order: queued jobs in CLAIM_ORDER.
        Index("ix_jobs_claim", *_claim_index_columns()),
        Index("ix_jobs_state_finished", "state", "finished_at"),
        Index("ix_jobs_lease", "state", "lease_expires_at"),
        Index("ix_jobs_content_key", "content_key"),
        Index("ix_jobs_created", "created_at"),
    )


class WorkerRecord(Base):
    """A worker that is (or was recently) alive, with what it is doing."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(160), primary_key=True)
    node: Mapped[str] = mapped_column(String(128))
    device: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # idle, busy, stopping
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    pid: Mapped[int | None] = mapped_column(Integer)


class NodeRecord(Base):
    """A running Transcriptarr process (`run` or `worker`) and what it does; its workers share its name."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(64))  # what this node does, e.g. "api,discovery,workers" or "workers"
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(32))
    devices: Mapped[list[str]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WrittenSubtitle(Base):
    """A subtitle file this service wrote: its own output is recognised however it is named."""

    __tablename__ = "written_subtitles"

    # Paths can be longer than MariaDB can index: the unique key is their sha256.
    path_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    media_path: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    written_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Ownership is the content: the sha256 of the bytes written, and of a write about to replace
    # them (recorded before the rename). A row with neither predates them: its path alone counts.
    sha256: Mapped[str | None] = mapped_column(String(64))
    pending_sha256: Mapped[str | None] = mapped_column(String(64))
    # The media file as it was when transcribed: once it changes, the subtitle is stale.
    media_size: Mapped[int | None] = mapped_column(BigInteger)
    media_mtime_ns: Mapped[int | None] = mapped_column(BigInteger)


class MediaIndexEntry(Base):
    """A media file of the libraries as last seen, its cached probe and the decision taken.

    A rescan compares size, mtime and `context` (the sidecar names next to the file
    and the rule settings) and does nothing more for a file where all three match.
    """

    __tablename__ = "media_index"

    # Paths can be longer than MariaDB can index: the unique key is their sha256.
    path_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    # Nanoseconds, exact on every backend (a MariaDB FLOAT would round a float mtime).
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    context: Mapped[str] = mapped_column(String(64))
    probe: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    probe_error: Mapped[str | None] = mapped_column(Text)
    queued: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    jobs: Mapped[list[list[str | None]]] = mapped_column(JSON)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FollowUpState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    GIVEN_UP = "given_up"


class FollowUpRecord(Base):
    """Something to tell another service about a finished job (a refresh, a Bazarr call, a notification).

    Stored with the job's result in the same transaction (queue/followups.py) and done at least once by
    integrations/followups.py. `kind` and `payload` are plain data: the queue never needs to know the kinds.
    """

    __tablename__ = "followups"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(Text)  # who is told, for people (never a key or a token)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default=FollowUpState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Due time; a claim pushes it a lease ahead, so a claimed follow-up is not due for anyone else.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(200))  # "<node>/<runner token>" while an attempt runs
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_followups_due", "state", "next_attempt_at"),
        Index("ix_followups_job", "job_id"),
    )
