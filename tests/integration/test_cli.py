"""The `transcriptarr` command against a real database, as a person or a script uses it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.fixture
def cli(tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATABASE_URL": db_url,
        "DATA_DIR": str(tmp_path / "data"),
        "LIBRARY_PATHS": str(tmp_path),  # enqueue takes only files inside a library, like POST /api/jobs
    }

    def run(*args: str, expect: int = 0) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "transcriptarr", *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert result.returncode == expect, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result.stdout + result.stderr

    return run


def test_queue_control_from_the_command_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    movie = tmp_path / "Movie (2020).mkv"
    movie.write_bytes(b"not really a movie, but the queue does not look inside")

    assert "schema empty -> 0003" in cli("db", "upgrade") or "schema already at" in cli("db", "upgrade")
    assert "job 1: queued" in cli("enqueue", str(movie), "--language", "en")
    assert "job 1: already queued as job 1" in cli("enqueue", str(movie), "--language", "en")

    listed = json.loads(cli("jobs", "--json"))
    assert [(job["id"], job["state"], job["target_language"]) for job in listed] == [(1, "queued", "en")]

    assert "priority 900" in cli("priority", "1", "900")
    status = json.loads(cli("status", "--json"))
    assert status["queue"]["counts"]["queued"] == 1

    assert "job 1 cancelled" in cli("cancel", "1")
    assert "already cancelled" in cli("cancel", "1", expect=1)
    assert "job 1 queued again" in cli("retry", "1")
    assert "does not exist" in cli("cancel", "42", expect=1)
    assert "queued" in cli("jobs", "--state", "queued")


def test_enqueue_of_a_missing_file_says_what_to_give(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = cli("enqueue", str(tmp_path / "nope.mkv"), expect=1)
    assert "does not exist: give the path of a video or audio file" in out


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATABASE_URL": "postgresql://nobody:secret@127.0.0.1:9/none",
    }
    result = subprocess.run(
        [sys.executable, "-m", "transcriptarr", "status"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach the database postgresql+asyncpg://nobody:***@127.0.0.1:9")
    assert "secret" not in result.stderr and "Traceback" not in result.stderr


def test_worker_node_shows_in_status_and_stops_on_sigterm(cli, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATABASE_URL": db_url,
        "DATA_DIR": str(tmp_path / "data"),
        "NODE_NAME": "gpu-box-1",
        "WORKERS": "1",
        "WHISPER_DEVICE": "cpu",
        "WHISPER_MODEL": "bundled:tiny.en",
        "LOG_FORMAT": "json",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "transcriptarr", "worker"], cwd=tmp_path, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert worker.poll() is None, log.read_text()
            nodes = json.loads(cli("status", "--json"))["nodes"]
            if nodes and [w["state"] for w in nodes[0]["workers"]] == ["idle"]:
                break
            assert time.monotonic() < deadline, f"the worker node never showed up in status:\n{log.read_text()}"
        [node] = nodes
        assert (node["name"], node["role"], node["devices"], node["stale"]) == ("gpu-box-1", "workers", ["cpu"], False)
        assert node["pid"] == worker.pid
        assert [w["id"] for w in node["workers"]] == ["gpu-box-1/cpu/0"]
        shown = cli("status")
        assert "nodes: 1 running, 0 stale" in shown and "gpu-box-1" in shown and "heartbeat" in shown

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    started = [json.loads(line) for line in log.read_text().splitlines() if '"service_started"' in line]
    assert [(event["role"], event["node"]) for event in started] == [("workers", "gpu-box-1")]
    assert "Traceback" not in log.read_text()
    assert json.loads(cli("status", "--json"))["nodes"] == []  # a node that stops removes itself
