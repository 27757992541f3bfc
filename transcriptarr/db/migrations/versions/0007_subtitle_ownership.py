"""What we wrote, not only where: the content hash of each subtitle and the media it was made from.

`sha256` is the hash of the bytes last written; `pending_sha256` the hash of a write about to
happen (recorded before the rename, so a crash between the two leaves the file recognisable);
`media_size` / `media_mtime_ns` the media file as it was when transcribed (a later change makes
the subtitle stale). Rows from before have none of these: their path alone counts, as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns: a plain ADD COLUMN on every backend, no table rebuild.
    op.add_column("written_subtitles", sa.Column("sha256", sa.String(64)))
    op.add_column("written_subtitles", sa.Column("pending_sha256", sa.String(64)))
    op.add_column("written_subtitles", sa.Column("media_size", sa.BigInteger))
    op.add_column("written_subtitles", sa.Column("media_mtime_ns", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("written_subtitles") as batch:
        batch.drop_column("media_mtime_ns")
        batch.drop_column("media_size")
        batch.drop_column("pending_sha256")
        batch.drop_column("sha256")
