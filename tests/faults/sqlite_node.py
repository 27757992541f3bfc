"""A real `transcriptarr run` process on a SQLite file, for the SQLite fault tests.

No model is loaded (WORKERS=0): these tests are about the database file. The log is
JSON lines in a file; waits poll the log or the process, with deadlines.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.polling import eventually

REPO_ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    def lines(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                found.append({"event": "not-json", "level": "error", "text": line})
        return found

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == event]

    def errors(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("level") in ("error", "critical")]

    def tail(self, count: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-count:])

    async def started(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with status {self.process.returncode}:\n{self.tail()}")
            return bool(self.events("service_started"))

        await eventually(ready, f"{self.name} to start", START_DEADLINE)

    async def exited(self, timeout: float = 60.0) -> int:
        await eventually(lambda: self.process.poll() is not None, f"{self.name} to exit\n{self.tail()}", timeout)
        return int(self.process.returncode)


class Nodes:
    """Starts nodes in `tmp_path`; `close` kills those still running."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[Node] = []

    def start(self, name: str, database: Path, *, http: bool = False, **extra: str) -> Node:
        port = free_port() if http else None
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.tmp_path),
            "DATABASE_URL": f"sqlite:///{database}",
            "NODE_NAME": name,
            "DATA_DIR": str(self.tmp_path / name),
            "MODEL_DIR": str(self.tmp_path / "models"),
            "WHISPER_MODEL": "bundled:tiny.en",
            "WHISPER_DEVICE": "cpu",
            "WORKERS": "0",
            "SHUTDOWN_GRACE_SECONDS": "5",
            "LOG_FORMAT": "json",
            "HTTP_ENABLED": "true" if http else "false",
            **({"HTTP_PORT": str(port), "HTTP_HOST": "127.0.0.1"} if port else {}),
            **extra,
        }
        log = self.tmp_path / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "transcriptarr", "run"],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        node = Node(name, process, log, port)
        self.started.append(node)
        return node

    def close(self) -> None:
        for node in self.started:
            if node.process.poll() is None:
                node.process.kill()
                node.process.wait(30)


@contextlib.contextmanager
def nodes_in(tmp_path: Path) -> Iterator[Nodes]:
    nodes = Nodes(tmp_path)
    try:
        yield nodes
    finally:
        nodes.close()
