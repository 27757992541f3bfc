"""`transcriptarr enqueue` checks paths, names and languages like POST /api/jobs (issue #16, part 6).

Reproduces the findings: `--language '../../x'` was stored as a target language, a file
outside the library was queued (and would have had a subtitle written next to it), and
the CLI printed raw escape codes from names the scanner refuses. The checks are the API's
own (transcriptarr/policy/confinement.py), so every refusal is the API's reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    library, outside = tmp_path / "library", tmp_path / "outside"
    library.mkdir()
    outside.mkdir()
    (library / "Film.mkv").write_bytes(b"media")
    (outside / "Elsewhere.mkv").write_bytes(b"not in the library")
    (library / "Linked.mkv").symlink_to(outside / "Elsewhere.mkv")
    return {"root": tmp_path, "library": library, "outside": outside}


@pytest.fixture
def cli(folders: dict[str, Path]) -> Cli:
    root = folders["root"]
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "DATABASE_URL": f"sqlite:///{root / 'cli.db'}",
        "DATA_DIR": str(root / "data"),
        "LIBRARY_PATHS": str(folders["library"]),
    }

    def run(*args: str | bytes, **env: str) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(
            [sys.executable, "-m", "transcriptarr", *args], cwd=root, env={**base, **env}, capture_output=True
        )
        assert b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
        return done

    return run


def jobs(cli: Cli) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = json.loads(cli("jobs", "--json").stdout)
    return listed


def refused(done: subprocess.CompletedProcess[bytes]) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_language_that_is_no_language_is_refused(cli: Cli, folders: dict[str, Path]) -> None:
    line = refused(cli("enqueue", str(folders["library"] / "Film.mkv"), "--language", "../../x"))
    assert line == "error: unknown language '../../x'; use a code such as en, de, fr, or 'original'"
    assert jobs(cli) == []


def test_a_language_name_becomes_its_code(cli: Cli, folders: dict[str, Path]) -> None:
    done = cli("enqueue", str(folders["library"] / "Film.mkv"), "--language", "German")
    assert done.returncode == 0, done.stderr
    assert [job["target_language"] for job in jobs(cli)] == ["de"]


def test_a_file_outside_the_library_is_refused(cli: Cli, folders: dict[str, Path]) -> None:
    outside = folders["outside"] / "Elsewhere.mkv"
    assert refused(cli("enqueue", str(outside))) == f"error: {outside} is not inside LIBRARY_PATHS"
    up_and_out = f"{folders['library']}/../outside/Elsewhere.mkv"
    assert refused(cli("enqueue", up_and_out)) == f"error: {up_and_out} is not inside LIBRARY_PATHS"
    assert "LIBRARY_PATHS is empty" in refused(cli("enqueue", str(outside), LIBRARY_PATHS=""))
    assert jobs(cli) == []


def test_a_relative_path_is_taken_from_the_current_folder(cli: Cli, folders: dict[str, Path]) -> None:
    done = cli("enqueue", "library/Film.mkv", "--language", "en")
    assert done.returncode == 0, done.stderr
    assert [job["media_path"] for job in jobs(cli)] == [str(folders["library"] / "Film.mkv")]


def test_a_symlink_out_follows_library_follow_symlinks(cli: Cli, folders: dict[str, Path]) -> None:
    link = folders["library"] / "Linked.mkv"
    line = refused(cli("enqueue", str(link), LIBRARY_FOLLOW_SYMLINKS="false"))
    assert "a symlink leads out of the library and LIBRARY_FOLLOW_SYMLINKS is false" in line

    done = cli("enqueue", str(link), "--language", "en")  # the default, true: as the scan follows it
    assert done.returncode == 0, done.stderr
    assert [job["media_path"] for job in jobs(cli)] == [str(link)]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (b"Bad \xff Name.mkv", "its name is not valid UTF-8; rename it"),
        (b"\x1b[2J\x1b[31mRed.mkv", "its name contains a control character (e.g. a newline); rename it"),
        (b"Two\nLines.mkv", "its name contains a control character (e.g. a newline); rename it"),
    ],
)
def test_a_name_the_scanner_refuses_is_refused_without_raw_escapes(
    cli: Cli, folders: dict[str, Path], name: bytes, reason: str
) -> None:
    path = os.fsencode(folders["library"]) + b"/" + name
    Path(os.fsdecode(path)).write_bytes(b"media")

    done = cli("enqueue", path)

    line = refused(done)
    assert line.endswith(f"cannot be queued: {reason}")
    assert b"\x1b" not in done.stderr + done.stdout and b"\xff" not in done.stderr + done.stdout
    assert jobs(cli) == []
