"""The `transcriptarr` command against a real database, as a person or a script uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def cli(tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATABASE_URL": db_url,
        "DATA_DIR": str(tmp_path / "data"),
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
    assert "is not a file" in out


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
