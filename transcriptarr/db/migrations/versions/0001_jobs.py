"""The job queue.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from transcriptarr.db.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer, "sqlite")
    long_text = sa.Text().with_variant(sa.dialects.mysql.LONGTEXT(), "mysql", "mariadb")
    op.create_table(
        "jobs",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(24), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("media_path", sa.Text),
        sa.Column("media_size", sa.BigInteger),
        sa.Column("media_mtime", sa.Float),
        sa.Column("upload_path", sa.Text),
        sa.Column("content_key", sa.String(64), nullable=False),
        sa.Column("active_key", sa.String(64), unique=True),
        sa.Column("task", sa.String(16), nullable=False),
        sa.Column("source_language", sa.String(16)),
        sa.Column("language_probability", sa.Float),
        sa.Column("target_language", sa.String(16)),
        sa.Column("quality", sa.String(16), nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("worker", sa.String(160)),
        sa.Column("lease_expires_at", UTCDateTime),
        sa.Column("heartbeat_at", UTCDateTime),
        sa.Column("error", sa.Text),
        sa.Column("error_permanent", sa.Boolean, nullable=False),
        sa.Column("result_path", sa.Text),
        sa.Column("result_text", long_text),
        sa.Column("media_duration", sa.Float),
        sa.Column("processing_seconds", sa.Float),
    )
    # Claim order: priority (high first), then age; DESC lets one index walk serve it.
    op.create_index("ix_jobs_claim", "jobs", ["state", sa.text("priority DESC"), "created_at", "id"])
    op.create_index("ix_jobs_state_finished", "jobs", ["state", "finished_at"])
    op.create_index("ix_jobs_lease", "jobs", ["state", "lease_expires_at"])
    op.create_index("ix_jobs_content_key", "jobs", ["content_key"])
    op.create_index("ix_jobs_created", "jobs", ["created_at"])


def downgrade() -> None:
    op.drop_table("jobs")
