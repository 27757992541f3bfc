"""The subtitle files this service wrote (so they count as existing, and may be replaced)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import cast

from sqlalchemy import Connection, Table, delete, select

from transcriptarr.db.database import Database
from transcriptarr.db.models import WrittenSubtitle, utcnow

TABLE = cast(Table, WrittenSubtitle.__table__)


def path_key(path: Path | str) -> str:
    return hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()


class SubtitleRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, path: Path, *, media_path: str | None, language: str | None, job_id: int | None) -> None:
        key = path_key(path)

        def tx(conn: Connection) -> None:
            conn.execute(delete(TABLE).where(TABLE.c.path_key == key))
            conn.execute(
                TABLE.insert().values(
                    path_key=key,
                    path=str(path),
                    media_path=media_path,
                    language=language,
                    job_id=job_id,
                    written_at=utcnow(),
                )
            )

        await self.db.write(tx)

    async def forget(self, path: Path) -> None:
        """No longer count `path` as ours (a write of it that failed)."""
        key = path_key(path)
        await self.db.write(lambda conn: conn.execute(delete(TABLE).where(TABLE.c.path_key == key)))

    async def is_ours(self, path: Path) -> bool:
        key = path_key(path)
        return await self.db.read(
            lambda conn: conn.execute(select(TABLE.c.path_key).where(TABLE.c.path_key == key)).first() is not None
        )

    async def for_media(self, media_path: str) -> list[tuple[str, str | None]]:
        """(subtitle path, language) of what we wrote for one media file."""
        query = select(TABLE.c.path, TABLE.c.language).where(TABLE.c.media_path == media_path)
        return await self.db.read(lambda conn: [(row.path, row.language) for row in conn.execute(query).all()])
