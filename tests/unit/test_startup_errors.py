"""Start-up problems are one line with the right cause, before any job runs (issue #16, part 6).

Reproduces the findings: `WHISPER_MODEL=no-such-model` started fine and failed every job
four times after extracting its audio; an unwritable SQLite folder or DATA_DIR gave a
40-line traceback; "check the database server is running" was said of a SQLite file and
"is the port in use?" of a host name that does not resolve. Nothing here downloads a model.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.faults.mounts import read_only_view
from transcriptarr.api.listening import bind_failure
from transcriptarr.db.database import Database
from transcriptarr.db.problems import unreachable_message
from transcriptarr.workers.models import model_problem


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "DATA_DIR": str(tmp_path / "data"),
        "MODEL_DIR": str(tmp_path / "models"),
        "WHISPER_MODEL": "bundled:tiny.en",
        "WHISPER_DEVICE": "cpu",
        "HTTP_PORT": str(free_port()),
        "LOG_FORMAT": "json",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "transcriptarr", *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(done: subprocess.CompletedProcess[str], status: int) -> str:
    assert done.returncode == status, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# --------------------------------------------------------------------------- the model


def test_an_unknown_model_stops_run_before_any_job(tmp_path: Path) -> None:
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "Film.mkv").write_bytes(b"media")
    queued = run(tmp_path, "enqueue", str(tmp_path / "library" / "Film.mkv"), LIBRARY_PATHS=str(tmp_path / "library"))
    assert queued.returncode == 0, queued.stderr

    line = one_line(run(tmp_path, "run", "--once", WHISPER_MODEL="no-such-model"), 2)

    assert line.startswith("configuration error: WHISPER_MODEL: unknown model 'no-such-model': use a size name (")
    [job] = json.loads(run(tmp_path, "jobs", "--json").stdout)
    assert (job["state"], job["attempts"]) == ("queued", 0), "no job may run with a model that cannot load"


def test_a_missing_model_folder_is_one_line_for_worker_too(tmp_path: Path) -> None:
    line = one_line(run(tmp_path, "worker", "--once", WHISPER_MODEL=str(tmp_path / "no-model")), 2)
    assert line == (
        f"configuration error: WHISPER_MODEL: model folder {tmp_path / 'no-model'} does not exist: set "
        "WHISPER_MODEL to a folder that contains model.bin, a size name such as 'small', or bundled:tiny.en / "
        "bundled:base"
    )


def test_a_size_name_that_would_need_a_download_while_offline_is_one_line(tmp_path: Path) -> None:
    line = one_line(run(tmp_path, "run", "--once", WHISPER_MODEL="small", OFFLINE="true"), 2)
    assert line.startswith(
        f"configuration error: WHISPER_MODEL: model 'small' is not in MODEL_DIR {tmp_path / 'models'} and OFFLINE is on"
    )


def test_what_the_model_check_accepts(tmp_path: Path) -> None:
    assert model_problem("small", model_dir=tmp_path, offline=False) is None  # downloaded by the first job
    assert model_problem("Systran/faster-whisper-small", model_dir=tmp_path, offline=False) is None
    assert model_problem("bundled:tiny.en", model_dir=tmp_path, offline=True) is None
    assert "has no model.bin" in str(model_problem(str(tmp_path), model_dir=tmp_path, offline=True))
    assert not list(tmp_path.iterdir()), "the check downloads nothing"


def test_workers_zero_without_the_provider_needs_no_model(tmp_path: Path) -> None:
    from transcriptarr.preflight import preflight
    from transcriptarr.settings import load_settings

    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'x.db'}", data_dir=tmp_path / "d", workers=0, whisper_model="nope"
    )
    preflight(settings)  # no ConfigError: nothing on this node loads a model


# --------------------------------------------------------------------------- folders that cannot be written


def test_a_sqlite_database_in_a_read_only_folder_is_one_line(tmp_path: Path) -> None:
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    with read_only_view(shelf, tmp_path / "ro") as read_only:
        line = one_line(run(tmp_path, "run", "--once", DATABASE_URL=f"sqlite:///{read_only / 'db.sqlite'}"), 2)
    assert line == (
        f"configuration error: DATABASE_URL: cannot use the SQLite database {read_only / 'db.sqlite'}: folder "
        f"{read_only} is on a read-only file system; set DATABASE_URL to a file in a writable folder"
    )


def test_a_read_only_data_dir_is_one_line(tmp_path: Path) -> None:
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    with read_only_view(shelf, tmp_path / "ro") as read_only:
        line = one_line(run(tmp_path, "run", "--once", DATA_DIR=str(read_only / "data")), 2)
    assert line == (
        f"configuration error: DATA_DIR: folder {read_only / 'data'} is on a read-only file system; "
        "set DATA_DIR to a writable folder"
    )


def test_a_data_dir_under_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    line = one_line(run(tmp_path, "run", "--once", DATA_DIR=str(tmp_path / "a-file" / "data")), 2)
    assert line.startswith("configuration error: DATA_DIR: ") and "a-file" in line and "not a folder" in line


def test_the_commands_say_sqlite_file_not_database_server(tmp_path: Path) -> None:
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    with read_only_view(shelf, tmp_path / "ro") as read_only:
        line = one_line(run(tmp_path, "status", DATABASE_URL=f"sqlite:///{read_only / 'db.sqlite'}"), 1)
    assert "read-only file system" in line and "database server" not in line


async def test_a_sqlite_file_that_cannot_be_opened_is_not_a_server(tmp_path: Path) -> None:
    sqlite = Database(make_url(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"))
    postgres = Database(make_url("postgresql+asyncpg://u:secret@127.0.0.1:9/db"))
    try:
        error = "OperationalError: (sqlite3.OperationalError) unable to open database file\n(Background on ...)"
        message = unreachable_message(sqlite, error)
        assert message == (
            f"cannot open the SQLite database {tmp_path / 'x.db'}: OperationalError: (sqlite3.OperationalError) "
            "unable to open database file; check DATABASE_URL"
        )
        served = unreachable_message(postgres, "ConnectionRefusedError: [Errno 111] Connection refused")
        assert "that the database server is running" in served and "secret" not in served
    finally:
        await sqlite.close()
        await postgres.close()


# --------------------------------------------------------------------------- where the server listens


def test_a_host_that_does_not_resolve_is_not_a_port_in_use(tmp_path: Path) -> None:
    done = run(tmp_path, "run", WORKERS="0", HTTP_HOST="no-such-host.invalid")

    assert done.returncode == 1, done.stderr
    [failed] = [json.loads(line) for line in done.stderr.splitlines() if '"startup_failed"' in line]
    assert (
        failed["error"].startswith("cannot listen on no-such-host.invalid:")
        and "HTTP_HOST 'no-such-host.invalid' is neither an address nor a name that resolves" in failed["error"]
    )
    assert "in use" not in failed["error"]


def test_bind_failures_name_their_cause() -> None:
    in_use = bind_failure("127.0.0.1", 9000, OSError(errno.EADDRINUSE, "Address already in use"))
    assert str(in_use) == (
        "cannot listen on 127.0.0.1:9000: the port is in use by another program; "
        "stop it or set HTTP_PORT to a free port"
    )
    assert in_use.errno == errno.EADDRINUSE
    elsewhere = bind_failure("192.0.2.1", 9000, OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"))
    assert "192.0.2.1 is not an address of this machine; set HTTP_HOST" in str(elsewhere)
    unknown = bind_failure("nas", 9000, socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    assert "HTTP_HOST 'nas' is neither an address nor a name that resolves" in str(unknown)


@pytest.mark.parametrize("host", ["127.0.0.1"])
def test_a_port_in_use_still_says_so(tmp_path: Path, host: str) -> None:
    with socket.socket() as taken:
        taken.bind((host, 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(tmp_path, "run", WORKERS="0", HTTP_HOST=host, HTTP_PORT=str(port))
    assert done.returncode == 1
    [failed] = [json.loads(line) for line in done.stderr.splitlines() if '"startup_failed"' in line]
    assert f"cannot listen on {host}:{port}: the port is in use by another program" in failed["error"]
