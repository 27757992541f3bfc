"""Worker registry, cooperative cancel, node ownership and job details.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from transcriptarr.db.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: SQLite's batch mode would rebuild the table and lose the
    # DESC order of the claim index.
    op.add_column("jobs", sa.Column("node", sa.String(128)))
    op.add_column("jobs", sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("jobs", sa.Column("details", sa.JSON, nullable=False, server_default=sa.text("'{}'")))
    op.create_table(
        "workers",
        sa.Column("id", sa.String(160), primary_key=True),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("device", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("heartbeat_at", UTCDateTime, nullable=False),
        sa.Column("pid", sa.Integer),
    )


def downgrade() -> None:
    op.drop_table("workers")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("details")
        batch.drop_column("cancel_requested")
        batch.drop_column("node")
