"""SQLite serves one node: a second `run` or `worker` on the same database file is refused.

Two nodes on one SQLite file would fight over its single writer, and across hosts (a
database file on a network share) could corrupt it. Scaling out needs PostgreSQL or
MariaDB. The service holds an exclusive `flock` on `<database>.lock` while it runs;
the kernel drops the lock when the process ends, however it ends (SIGKILL included),
so a crash never leaves a stale lock behind. The lock file says who holds it, for the
message. (The service also refuses to start while the registry shows a live node on
another host: a lock may not reach across a network share.)

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
from pathlib import Path


class SqliteInUse(Exception):
    """Another node uses the SQLite database; the message says which and what to do."""


def in_use_message(database: Path, name: str, pid: int | str, host: str | None = None) -> str:
    where = f" on {host}" if host and host != socket.gethostname() else ""
    return (
        f"another Transcriptarr node ({name}, pid {pid}{where}) is using the SQLite database {database}; "
        "SQLite supports one node — use PostgreSQL or MariaDB (DATABASE_URL) to run several"
    )


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


@contextlib.contextmanager
def sqlite_node_lock(database_file: str, node: str) -> Iterator[Path]:
    """Hold the node lock of the database for the block (which gets the database's full path).

    SqliteInUse when another process holds it."""
    database = Path(database_file).expanduser().resolve()
    path = lock_path(database)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            name, pid = holder.get("node", "unknown"), holder.get("pid", "unknown")
            raise SqliteInUse(in_use_message(database, name, pid, holder.get("host"))) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"node": node, "pid": os.getpid(), "host": socket.gethostname()}).encode(), 0)
        yield database
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> dict[str, str]:
    """Who wrote the lock file (empty if it cannot tell: the holder may be writing it right now)."""
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return {key: str(value) for key, value in data.items()} if isinstance(data, dict) else {}
