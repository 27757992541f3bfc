"""Remember the subtitle files the service wrote.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from transcriptarr.db.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "written_subtitles",
        sa.Column("path_key", sa.String(64), primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("media_path", sa.Text),
        sa.Column("language", sa.String(16)),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("written_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("written_subtitles")
