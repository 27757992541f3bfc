"""Which nodes and workers are alive, where, doing what (for status pages, the CLI and SQLite's one-node rule).

A node is one running `transcriptarr run` or `transcriptarr worker` process; its
workers are named `<node>/<device>/<n>`. Each node renews its row (and its workers'
heartbeats) every few seconds; one that stops doing so is stale: it crashed, lost
the database or was killed. Its jobs come back to the queue when their leases run
out (`JobQueue.recover_expired`, run by every node).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Connection, Table, delete, insert, select, update

from transcriptarr import __version__
from transcriptarr.db.database import Database
from transcriptarr.db.models import NodeRecord, WorkerRecord, utcnow
from transcriptarr.db.outage import log_failure

WORKERS = cast(Table, WorkerRecord.__table__)
NODES = cast(Table, NodeRecord.__table__)

log = structlog.get_logger(__name__)


def stale_after(lease_seconds: float) -> timedelta:
    """A node or worker silent for longer than this is shown as stale (it renews every third of a lease)."""
    return timedelta(seconds=lease_seconds * 1.5)


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    node: str
    device: str
    state: str
    job_id: int | None
    heartbeat_at: datetime
    alive: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "node": self.node,
            "device": self.device,
            "state": self.state,
            "job_id": self.job_id,
            "heartbeat_at": self.heartbeat_at.isoformat(),
            "alive": self.alive,
        }


@dataclass(frozen=True)
class NodeInfo:
    """A node and its workers. `role` is None for workers of a node that has no row (a pool run without a service)."""

    name: str
    role: str | None
    host: str | None
    pid: int | None
    version: str | None
    devices: tuple[str, ...]
    started_at: datetime | None
    heartbeat_at: datetime
    alive: bool
    workers: tuple[WorkerInfo, ...]

    @property
    def stale(self) -> bool:
        return not self.alive

    def as_dict(self, now: datetime) -> dict[str, Any]:
        """For `GET /api/status` and `transcriptarr status --json`."""
        return {
            "name": self.name,
            "role": self.role,
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "devices": list(self.devices),
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "heartbeat_at": self.heartbeat_at.isoformat(),
            "heartbeat_age_seconds": round((now - self.heartbeat_at).total_seconds(), 1),
            "stale": self.stale,
            "workers": [worker.as_dict() for worker in self.workers],
        }


class WorkerRegistry:
    def __init__(self, db: Database, *, stale_after: timedelta = timedelta(seconds=90)) -> None:
        self.db = db
        self.stale_after = stale_after

    # --- workers ---
    # Writes go through `Database.write`: SQLite's writer thread, MariaDB's deadlock retries (the
    # node's heartbeat updates the same rows while its workers register).
    async def register(self, worker_id: str, node: str, device: str) -> None:
        now = utcnow()

        def tx(conn: Connection) -> None:
            conn.execute(delete(WORKERS).where(WORKERS.c.id == worker_id))
            conn.execute(
                insert(WORKERS).values(
                    id=worker_id,
                    node=node,
                    device=device,
                    state="idle",
                    job_id=None,
                    started_at=now,
                    heartbeat_at=now,
                    pid=os.getpid(),
                )
            )

        await self.db.write(tx)

    async def beat(self, worker_id: str, state: str, job_id: int | None) -> None:
        values = {"state": state, "job_id": job_id, "heartbeat_at": utcnow()}
        await self.db.write(lambda conn: conn.execute(update(WORKERS).where(WORKERS.c.id == worker_id).values(values)))

    async def unregister(self, worker_id: str) -> None:
        await self.db.write(lambda conn: conn.execute(delete(WORKERS).where(WORKERS.c.id == worker_id)))

    async def list(self) -> list[WorkerInfo]:
        now = utcnow()
        # Through `Database.read`: bounded when asked for an HTTP request (db/call_bound.py).
        query = select(WORKERS).order_by(WORKERS.c.node, WORKERS.c.id)
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        return [
            WorkerInfo(
                id=row.id,
                node=row.node,
                device=row.device,
                state=row.state,
                job_id=row.job_id,
                heartbeat_at=row.heartbeat_at,
                alive=now - row.heartbeat_at < self.stale_after,
            )
            for row in rows
        ]

    async def prune(self, older_than: timedelta = timedelta(days=1)) -> int:
        cutoff = utcnow() - older_than

        def tx(conn: Connection) -> int:
            workers = conn.execute(delete(WORKERS).where(WORKERS.c.heartbeat_at < cutoff))
            nodes = conn.execute(delete(NODES).where(NODES.c.heartbeat_at < cutoff))
            return int(workers.rowcount) + int(nodes.rowcount)

        return await self.db.write(tx)

    # --- nodes ---
    async def register_node(self, name: str, role: str, devices: tuple[str, ...]) -> None:
        """This process is node `name` (a row left by its crashed predecessor is replaced)."""
        now = utcnow()

        def tx(conn: Connection) -> None:
            conn.execute(delete(NODES).where(NODES.c.name == name))
            conn.execute(
                insert(NODES).values(
                    name=name,
                    role=role,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    version=__version__,
                    devices=list(devices),
                    started_at=now,
                    heartbeat_at=now,
                )
            )

        await self.db.write(tx)

    async def beat_node(self, name: str) -> bool:
        """The node is alive, and so are its workers (a busy one writes no heartbeat of its own).

        False when the node has no row (pruned while the database was away): register it again."""
        now = utcnow()

        def tx(conn: Connection) -> bool:
            found = conn.execute(update(NODES).where(NODES.c.name == name).values(heartbeat_at=now)).rowcount == 1
            conn.execute(update(WORKERS).where(WORKERS.c.node == name).values(heartbeat_at=now))
            return bool(found)

        return await self.db.write(tx)

    async def unregister_node(self, name: str) -> None:
        def tx(conn: Connection) -> None:
            conn.execute(delete(NODES).where(NODES.c.name == name))
            conn.execute(delete(WORKERS).where(WORKERS.c.node == name))

        await self.db.write(tx)

    async def nodes(self) -> builtins.list[NodeInfo]:  # (`list` here is the method above)
        """Every node with its workers, by name; workers of a node without a row are grouped under its name."""
        now = utcnow()
        rows = await self.db.read(lambda conn: conn.execute(select(NODES).order_by(NODES.c.name)).all())
        workers = await self.list()
        by_node: dict[str, list[WorkerInfo]] = {}
        for worker in workers:
            by_node.setdefault(worker.node, []).append(worker)
        nodes = [
            NodeInfo(
                name=row.name,
                role=row.role,
                host=row.host,
                pid=row.pid,
                version=row.version,
                devices=tuple(row.devices or ()),
                started_at=row.started_at,
                heartbeat_at=row.heartbeat_at,
                alive=now - row.heartbeat_at < self.stale_after,
                workers=tuple(by_node.pop(row.name, ())),
            )
            for row in rows
        ]
        for name, orphans in by_node.items():
            nodes.append(
                NodeInfo(
                    name=name,
                    role=None,
                    host=None,
                    pid=None,
                    version=None,
                    devices=tuple(dict.fromkeys(w.device for w in orphans)),
                    started_at=None,
                    heartbeat_at=max(w.heartbeat_at for w in orphans),
                    alive=any(w.alive for w in orphans),
                    workers=tuple(orphans),
                )
            )
        return sorted(nodes, key=lambda node: node.name)

    async def live_node_elsewhere(self, me: str) -> NodeInfo | None:
        """A live node of another name on another host, if any (SQLite's one-node rule).

        Nodes on this host are left to the lock file: one that holds no lock has ended,
        even if its row still looks fresh (it was killed seconds ago)."""
        here = socket.gethostname()
        for node in await self.nodes():
            if node.alive and node.role is not None and node.name != me and node.host != here:
                return node
        return None


def _process_alive(pid: int) -> bool:
    """Whether `pid` on this host is a running Transcriptarr process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            if stat.read().rpartition(")")[2].split()[0] == "Z":
                return False  # killed, not yet reaped by its parent
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            # In a recreated container the old pid may now be some other program.
            return b"transcriptarr" in cmdline.read()
    except (OSError, IndexError):
        return True  # no /proc to ask: the signal said it lives


async def same_name_still_running(registry: WorkerRegistry, name: str, *, watch_seconds: float) -> NodeInfo | None:
    """Another process running as node `name`, or None when the row under that name is a dead predecessor's.

    Two live nodes with one name would share worker ids, so each could requeue and overwrite the
    other's jobs. A fresh row is not proof of life (a node killed a second ago left it): on this host
    the pid tells; from another host (a recreated container with a new host name) we watch the row
    for `watch_seconds`, since a live node renews it and a dead one cannot.
    """
    row = next((node for node in await registry.nodes() if node.name == name and node.role is not None), None)
    if row is None or not row.alive or row.pid is None:
        return None
    if row.host == socket.gethostname():
        return row if row.pid != os.getpid() and _process_alive(row.pid) else None
    log.warning(
        "node_name_in_use_checking",
        node=name,
        other_host=row.host,
        other_pid=row.pid,
        seconds=round(watch_seconds, 1),
        reason="a fresh row under this NODE_NAME from another host: waiting to see whether it is still alive",
    )
    await asyncio.sleep(watch_seconds)
    again = next((node for node in await registry.nodes() if node.name == name and node.role is not None), None)
    return again if again is not None and again.heartbeat_at > row.heartbeat_at else None


async def keep_node_registered(
    registry: WorkerRegistry, name: str, role: str, devices: tuple[str, ...], stop: asyncio.Event, *, every: float
) -> None:
    """Renew the node's row (registered at start-up) every `every` seconds until `stop`, then remove it."""
    try:
        while not stop.is_set():
            try:
                if not await registry.beat_node(name):
                    await registry.register_node(name, role, devices)
            except Exception as exc:  # database away: the row goes stale; say so, try again next round
                log_failure(log, "node_heartbeat_failed", exc, node=name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(registry.unregister_node(name))
