"""SQLite serves one node: a second `run` or `worker` on the same database file is refused.

Two nodes on one SQLite file would fight over its single writer, and across hosts (a
database file on a network share) could corrupt it. Scaling out needs PostgreSQL or
MariaDB. The service holds two exclusive `flock`s while it runs; the kernel drops them
when the process ends, however it ends (SIGKILL included), so a crash never leaves a
stale lock behind:

- on `<database>.lock`, which says who holds it (for the message), and which older
  versions take too;
- on the database file itself, so the lock belongs to the file, not to its name: a
  second name (a hard link, the file moved away while in use) leads to the same lock.
  A file with more than one name is refused outright: SQLite finds its journal (WAL)
  by the name it was opened with, so two names mean two WALs and a split history.
  (`flock` and SQLite's own POSIX record locks do not interact on local file systems.)

The descriptor on the database file stays open until the service has closed its
database (`service.run_service` takes the lock before it opens the database): closing
any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
included. `transcriptarr/db/sqlite_watch.py` uses it to notice the file deleted,
replaced or linked while the service runs. (The service also refuses to start while the
registry shows a live node on another host: a lock may not reach across a network share.)

Commands such as `status`, `jobs` and `enqueue` take no lock: they work while the
service runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class SqliteInUse(Exception):
    """Another node uses the SQLite database (or could: a second name); the message says which and what to do."""


@dataclass(frozen=True)
class LockedDatabase:
    """The SQLite database file this node holds: its full path, and a descriptor open on the file itself."""

    path: Path
    fd: int


def in_use_message(database: Path, name: str, pid: int | str, host: str | None = None) -> str:
    where = f" on {host}" if host and host != socket.gethostname() else ""
    return (
        f"another Transcriptarr node ({name}, pid {pid}{where}) is using the SQLite database {database}; "
        "SQLite supports one node — use PostgreSQL or MariaDB (DATABASE_URL) to run several"
    )


def file_in_use_message(database: Path) -> str:
    return (
        f"another process holds the SQLite database {database} (the same file, perhaps under another name: "
        "a hard link, or the file moved while a node used it); SQLite supports one node — stop the other node, "
        "or use PostgreSQL or MariaDB (DATABASE_URL) to run several"
    )


def linked_message(database: Path, names: int) -> str:
    return (
        f"the SQLite database {database} has {names} names (hard links): a node started through another name would "
        "write a second journal and split the history; remove the other names (`find / -xdev -samefile "
        f"{database}` lists them) or copy the file instead of linking it, then start again"
    )


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


@contextlib.contextmanager
def sqlite_node_lock(database_file: str, node: str) -> Iterator[LockedDatabase]:
    """Hold the node lock of the database for the block (which gets its full path and a descriptor on it).

    SqliteInUse when another process holds it, or when the file has a second name. The file
    is created (empty: SQLite takes an empty file for a new database) if it is not there yet."""
    database = Path(database_file).expanduser().resolve()
    database.parent.mkdir(parents=True, exist_ok=True)
    path = lock_path(database)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            name, pid = holder.get("node", "unknown"), holder.get("pid", "unknown")
            raise SqliteInUse(in_use_message(database, name, pid, holder.get("host"))) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"node": node, "pid": os.getpid(), "host": socket.gethostname()}).encode(), 0)
        with _file_lock(database) as file_fd:
            yield LockedDatabase(database, file_fd)
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _file_lock(database: Path) -> Iterator[int]:
    """An exclusive flock on the database file itself (its inode, whatever name reaches it)."""
    fd = os.open(database, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        # The names first: with a second name, the other name's holder is the likely cause.
        names = os.fstat(fd).st_nlink
        if names > 1:
            raise SqliteInUse(linked_message(database, names))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SqliteInUse(file_in_use_message(database)) from None
        yield fd
    finally:
        os.close(fd)


def _holder(fd: int) -> dict[str, str]:
    """Who wrote the lock file (empty if it cannot tell: the holder may be writing it right now)."""
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return {key: str(value) for key, value in data.items()} if isinstance(data, dict) else {}
