"""The media index: every library media file as last seen, its probe result and its decision.

A rescan loads the small columns of the whole index in one query (path -> size,
mtime, context) and compares in memory; only new or changed files cost more.
Queries are plain functions of a `Connection`, as in the job queue, and work on
SQLite, PostgreSQL and MariaDB alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Table, bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from transcriptarr.db.database import Database
from transcriptarr.db.models import MediaIndexEntry, Task, utcnow
from transcriptarr.library.rules import JobSpec

TABLE = cast(Table, MediaIndexEntry.__table__)
# Rows per statement: well under every backend's limit on bound parameters.
_CHUNK = 500
T = TypeVar("T")


def path_key(path: str) -> str:
    return hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class Known:
    """What a rescan needs to tell whether a file changed."""

    size: int
    mtime_ns: int
    context: str


@dataclass(frozen=True)
class IndexRow:
    path: str
    size: int
    mtime_ns: int
    context: str
    queued: bool
    reasons: list[str]
    jobs: list[JobSpec]
    probe: dict[str, Any] | None = None
    probe_error: str | None = None
    first_seen_at: datetime = field(default_factory=utcnow)
    decided_at: datetime = field(default_factory=utcnow)

    def values(self) -> dict[str, Any]:
        return {
            "path_key": path_key(self.path),
            "path": self.path,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "context": self.context,
            "probe": self.probe,
            "probe_error": self.probe_error,
            "queued": self.queued,
            "reasons": list(self.reasons),
            "jobs": [[target, str(task)] for target, task in self.jobs],
            "first_seen_at": self.first_seen_at,
            "decided_at": self.decided_at,
        }


def _row(row: Any) -> IndexRow:
    return IndexRow(
        path=row.path,
        size=int(row.size),
        mtime_ns=int(row.mtime_ns),
        context=row.context,
        queued=bool(row.queued),
        reasons=list(row.reasons or []),
        jobs=[(target, Task(task)) for target, task in (row.jobs or [])],
        probe=row.probe,
        probe_error=row.probe_error,
        first_seen_at=row.first_seen_at,
        decided_at=row.decided_at,
    )


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MediaIndex:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._by_keys = select(*TABLE.c).where(TABLE.c.path_key.in_(bindparam("keys", expanding=True)))

    async def load(self) -> dict[str, Known]:
        """The whole index, small columns only: one query however large the library."""
        query = select(TABLE.c.path, TABLE.c.size, TABLE.c.mtime_ns, TABLE.c.context)

        def tx(conn: Connection) -> dict[str, Known]:
            return {path: Known(size, mtime_ns, context) for path, size, mtime_ns, context in conn.execute(query)}

        return await self.db.read(tx)

    async def get(self, path: str) -> IndexRow | None:
        return (await self.get_many([path])).get(path)

    async def get_many(self, paths: Iterable[str]) -> dict[str, IndexRow]:
        keys = [path_key(path) for path in set(paths)]

        def tx(conn: Connection) -> dict[str, IndexRow]:
            found: dict[str, IndexRow] = {}
            for chunk in _chunks(keys):
                for row in conn.execute(self._by_keys, {"keys": list(chunk)}):
                    found[row.path] = _row(row)
            return found

        return await self.db.read(tx) if keys else {}

    async def under(self, folder: str) -> list[IndexRow]:
        """Rows of files inside `folder` (a folder deleted or moved as a whole)."""
        prefix = folder.rstrip("/") + "/"
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = select(*TABLE.c).where(TABLE.c.path.like(escaped + "%", escape="\\"))
        return await self.db.read(lambda conn: [_row(row) for row in conn.execute(query)])

    async def save(self, rows: Sequence[IndexRow], *, remove: Iterable[str] = ()) -> None:
        """Insert or replace `rows` and delete the rows of `remove`, in one transaction."""
        values = [row.values() for row in rows]
        doomed = [path_key(path) for path in remove] + [value["path_key"] for value in values]
        if not doomed:
            return

        def tx(conn: Connection) -> None:
            for chunk in _chunks(doomed):
                conn.execute(delete(TABLE).where(TABLE.c.path_key.in_(list(chunk))))
            for batch in _chunks(values):
                conn.execute(TABLE.insert(), list(batch))

        try:
            await self.db.write(tx)
        except IntegrityError:
            # Another writer (the watcher, a second node) inserted one of these rows
            # between our delete and our insert: the second try deletes it first.
            await self.db.write(tx)

    async def remove(self, paths: Iterable[str]) -> None:
        await self.save([], remove=paths)
