"""The subtitle files this service wrote (so they count as existing, and may be replaced).

Ownership is the content, not the path: each row keeps the sha256 of the bytes written
(`sha256`) and, while a write is on its way, of the bytes about to be written
(`pending_sha256`, recorded before the rename and confirmed after it), so a crash between
the two leaves either content recognised as ours. A file whose bytes match neither is
someone else's, even at a path we once wrote. Rows from before hashes were kept have
neither: their path alone counts until the next write.

Each row also keeps the media file's size and mtime when it was transcribed: once the
media changes, the subtitle is stale and the library decides again (`MediaIdentity`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from sqlalchemy import Connection, Table, bindparam, delete, select, update

from transcriptarr.db.database import Database
from transcriptarr.db.models import WrittenSubtitle, utcnow
from transcriptarr.subtitles.writer import Ownership

TABLE = cast(Table, WrittenSubtitle.__table__)
_BATCH = 200  # media paths per query (bounds the statement on a first scan of a large library)


def path_key(path: Path | str) -> str:
    return hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class MediaIdentity:
    """A media file as a job saw it: a change of any of these means other content."""

    size: int
    mtime_ns: int
    inode: int = 0
    device: int = 0

    def differs(self, other: MediaIdentity) -> str | None:
        """What changed, in words, or None."""
        changes = []
        if self.size != other.size:
            changes.append(f"size {self.size} -> {other.size} bytes")
        if self.mtime_ns != other.mtime_ns:
            changes.append("modification time")
        if (self.inode, self.device) != (other.inode, other.device):
            changes.append("replaced by another file (new inode)")
        return ", ".join(changes) or None


@dataclass(frozen=True)
class WrittenFor:
    """A subtitle we wrote for a media file, and the media's (size, mtime_ns) it was made from."""

    path: str
    media_path: str
    language: str | None
    made_from: tuple[int, int] | None  # None: written before this was recorded


class SubtitleRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self,
        path: Path,
        *,
        media_path: str | None,
        language: str | None,
        job_id: int | None,
        sha256: str | None = None,
        media: MediaIdentity | None = None,
    ) -> None:
        """Count `path` as ours: with `sha256`, only while it holds those bytes; without, whatever it holds."""
        key = path_key(path)
        values = {
            "path_key": key,
            "path": str(path),
            "media_path": media_path,
            "language": language,
            "job_id": job_id,
            "written_at": utcnow(),
            "sha256": sha256,
            "pending_sha256": None,
            "media_size": media.size if media else None,
            "media_mtime_ns": media.mtime_ns if media else None,
        }

        def tx(conn: Connection) -> None:
            conn.execute(delete(TABLE).where(TABLE.c.path_key == key))
            conn.execute(TABLE.insert().values(**values))

        await self.db.write(tx)

    async def ownership(self, path: Path) -> Ownership:
        """The contents at `path` we may replace (read before a write; the write checks the file itself)."""
        key = path_key(path)
        query = select(TABLE.c.sha256, TABLE.c.pending_sha256).where(TABLE.c.path_key == key)
        row = await self.db.read(lambda conn: conn.execute(query).first())
        if row is None:
            return Ownership()
        hashes = frozenset(h for h in (row.sha256, row.pending_sha256) if h)
        return Ownership(hashes=hashes, any_content=not hashes)  # no hash at all: a row from before hashes

    async def begin_write(
        self,
        path: Path,
        *,
        sha256: str,
        media_path: str | None,
        language: str | None,
        job_id: int | None,
        replaces: str | None = None,
    ) -> None:
        """Before the rename: the bytes about to be written count as ours (the ones there now still do).

        `replaces`: the hash of our file there now (it may be the pending write of an attempt that
        crashed, or a row from before hashes): kept as ours, so that a crash before this rename
        does not make it someone else's."""
        key = path_key(path)
        values = {"pending_sha256": sha256, "media_path": media_path, "language": language, "job_id": job_id}
        if replaces is not None:
            values["sha256"] = replaces

        def tx(conn: Connection) -> None:
            if conn.execute(update(TABLE).where(TABLE.c.path_key == key).values(**values)).rowcount == 0:
                conn.execute(TABLE.insert().values(path_key=key, path=str(path), written_at=utcnow(), **values))

        await self.db.write(tx)

    async def finish_write(self, path: Path, *, sha256: str, media: MediaIdentity | None) -> None:
        """After the rename: those bytes are what is there now, made from this media."""
        key = path_key(path)
        values = {
            "sha256": sha256,
            "pending_sha256": None,
            "written_at": utcnow(),
            "media_size": media.size if media else None,
            "media_mtime_ns": media.mtime_ns if media else None,
        }
        await self.db.write(
            lambda conn: conn.execute(
                update(TABLE).where(TABLE.c.path_key == key, TABLE.c.pending_sha256 == sha256).values(**values)
            )
        )

    async def abandon_write(self, path: Path, *, sha256: str) -> None:
        """The write did not happen: only what was there before counts (a row for nothing goes)."""
        key = path_key(path)
        mine = (TABLE.c.path_key == key, TABLE.c.pending_sha256 == sha256)

        def tx(conn: Connection) -> None:
            conn.execute(delete(TABLE).where(*mine, TABLE.c.sha256.is_(None)))
            conn.execute(update(TABLE).where(*mine).values(pending_sha256=None))

        await self.db.write(tx)

    async def forget(self, path: Path) -> None:
        """No longer count `path` as ours (a write of it that failed)."""
        key = path_key(path)
        await self.db.write(lambda conn: conn.execute(delete(TABLE).where(TABLE.c.path_key == key)))

    async def is_ours(self, path: Path) -> bool:
        """Whether we have a record of writing `path` (whatever it holds now; see `ownership`)."""
        key = path_key(path)
        return await self.db.read(
            lambda conn: conn.execute(select(TABLE.c.path_key).where(TABLE.c.path_key == key)).first() is not None
        )

    async def for_media(self, media_path: str) -> list[tuple[str, str | None]]:
        """(subtitle path, language) of what we wrote for one media file."""
        query = select(TABLE.c.path, TABLE.c.language).where(TABLE.c.media_path == media_path)
        return await self.db.read(lambda conn: [(row.path, row.language) for row in conn.execute(query).all()])

    async def written_for(self, media_paths: Sequence[str]) -> list[WrittenFor]:
        """What we wrote for any of these media files (whether it still exists or not), in one read."""
        c = TABLE.c
        query = select(c.path, c.media_path, c.language, c.media_size, c.media_mtime_ns).where(
            c.media_path.in_(bindparam("paths", expanding=True))
        )

        def tx(conn: Connection) -> list[WrittenFor]:
            found = []
            for start in range(0, len(media_paths), _BATCH):
                for row in conn.execute(query, {"paths": list(media_paths[start : start + _BATCH])}):
                    made_from = None if row.media_size is None else (row.media_size, row.media_mtime_ns)
                    found.append(WrittenFor(row.path, row.media_path, row.language, made_from))
            return found

        return await self.db.read(tx)
