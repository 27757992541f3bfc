"""The SQLite file stays the one the service opened, under one name, or the service stops.

A SQLite database is a file found by its name. If the file is deleted while the
service runs, the service goes on writing into the unlinked file, and everything it
wrote (history, stored Bazarr results, the record of which subtitles are ours) is gone
at the next start. If another file is put at the path, or the file gets a second name
(a hard link), connections opened later reach another file or another journal (WAL):
the history splits. Every few seconds the path's `stat` is compared with the file the
service holds open (`fstat` of the descriptor from `sqlite_lock`; held open, so its inode
number cannot be reused by a new file): a path that is gone, that leads to another file,
or a file with more than one name stops the service with one `sqlite_file_changed`
error line that says what happened and what to do, and exit status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

CHECK_EVERY_SECONDS = 2.0
_TO_DO = "stopping so that nothing is written where it would be lost or split from the rest"


@dataclass
class SqliteFileWatch:
    """What happened to the database file, once something did (`problem`)."""

    path: Path
    fd: int  # open on the database file the service uses
    problem: str | None = None

    def check(self) -> str | None:
        """One line saying what happened to the file and what to do; None while all is well."""
        held = os.fstat(self.fd)
        try:
            now = self.path.stat()
        except FileNotFoundError:
            if held.st_nlink == 0:
                return (
                    f"the SQLite database {self.path} was deleted while the service used it; {_TO_DO}: "
                    "restore it from a backup (or start without it for an empty database), then start again"
                )
            return (
                f"the SQLite database {self.path} was moved away while the service used it; {_TO_DO}: "
                "move it back, or set DATABASE_URL to its new place, then start again"
            )
        except OSError:
            return None  # the folder is unreadable for a moment (a remount): not a verdict on the file
        if (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
            return (
                f"the SQLite database {self.path} was replaced by another file while the service used it; {_TO_DO}: "
                "keep the file you want at that path (the service's last writes are in the one that was replaced, "
                "if it still exists under another name), then start again"
            )
        if held.st_nlink > 1:
            return (
                f"the SQLite database {self.path} got a second name (a hard link: {held.st_nlink} names) while the "
                f"service used it; {_TO_DO}: remove the other names (`find / -xdev -samefile {self.path}` lists "
                "them) or copy the file instead of linking it, then start again"
            )
        return None


async def watch_sqlite_file(watch: SqliteFileWatch, stop: asyncio.Event, *, every: float = CHECK_EVERY_SECONDS) -> None:
    """Check the file every `every` seconds until `stop`; on a problem, log it once, keep it and set `stop`."""
    while not stop.is_set():
        problem = watch.check()
        if problem is not None:
            watch.problem = problem
            log.error("sqlite_file_changed", database=str(watch.path), error=problem)
            stop.set()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
