"""A PostgreSQL server of a test's own that the test can freeze (SIGSTOP) and thaw, as a stalled database.

The session's shared server is not a test's to freeze: `own_postgres` (tests/faults/conftest.py) starts one.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.servers import RunningServer


def server_processes(server: RunningServer) -> list[int]:
    """The postmaster and every process it started (one backend per connection)."""
    postmaster = int((server.base_dir / "data" / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(entry.name))
    return [postmaster, *children]


def freeze(server: RunningServer) -> None:
    for pid in server_processes(server):
        os.kill(pid, signal.SIGSTOP)


def thaw(server: RunningServer) -> None:
    for pid in server_processes(server):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            continue
