"""The start-up factories (transcriptarr/startup.py) that the service, the commands and the demo share."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import structlog

from transcriptarr.db.models import Source
from transcriptarr.library_commands import LIBRARY_HANDLERS
from transcriptarr.queue.jobqueue import NewJob
from transcriptarr.settings import Settings, load_settings
from transcriptarr.startup import StartupError, open_storage

UNREACHABLE = "postgresql://nobody:secret@127.0.0.1:9/none"  # port 9 (discard): refused at once


def settings_for(database_url: str, **values: object) -> Settings:
    return load_settings(database_url=database_url, _env_file=None, **values)


async def test_a_new_database_is_upgraded_once_then_used_as_it_is(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'new.db'}", lease_seconds=40, max_retries=2)
    async with open_storage(settings) as storage:
        assert storage.upgrade is not None and storage.upgrade.before is None and storage.upgrade.after
        # The queue and the registries are built from the settings, on that database.
        assert storage.queue.db is storage.db and storage.workers.db is storage.db
        result = await storage.queue.enqueue(NewJob(source=Source.MANUAL, media_path=str(tmp_path / "a.mkv")))
        assert result.job.max_attempts == 3
    async with open_storage(settings) as storage:
        assert storage.upgrade is None  # current: nothing to do
        assert (await storage.queue.get(result.job.id)).media_path == str(tmp_path / "a.mkv")


async def test_an_unreachable_database_is_one_line_saying_what_to_check() -> None:
    with pytest.raises(StartupError) as raised:
        async with open_storage(settings_for(UNREACHABLE)):
            pass
    message = str(raised.value)
    assert message.startswith("cannot reach the database postgresql+asyncpg://nobody:***@127.0.0.1:9/none: ")
    assert message.endswith("check DATABASE_URL and that the database server is running and reachable")
    assert "\n" not in message and "secret" not in message


def test_library_commands_report_an_unreachable_database_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = structlog.get_config()  # the command configures logging onto pytest's captured stderr
    try:
        status = LIBRARY_HANDLERS["scan"](
            settings_for(UNREACHABLE, library_paths=str(tmp_path)), argparse.Namespace(dry_run=True)
        )
    finally:
        structlog.configure(**saved)
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("error: cannot reach the database postgresql+asyncpg://nobody:***@127.0.0.1:9/none: ")
    assert err.count("\n") == 1 and "Traceback" not in err
