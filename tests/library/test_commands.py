"""`explain` and `scan [--dry-run]` as cli.py runs them: real settings, database and media."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tests.library.conftest import Kit, place
from transcriptarr.library.commands import add_library_commands
from transcriptarr.library_commands import LIBRARY_HANDLERS
from transcriptarr.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # The commands configure logging onto pytest's captured stderr, which closes after the test.
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def settings(tmp_path: Path, library_dir: Path) -> Settings:
    return load_settings(
        database_url=f"sqlite:///{tmp_path / 'cli.db'}",
        library_paths=str(library_dir),
        target_languages="original,en",
        _env_file=None,
    )


def run(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_library_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return LIBRARY_HANDLERS[args.command](settings, args)


def test_explain_prints_the_decision_and_every_reason(
    settings: Settings, kit: Kit, library_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    film = place(kit.french, library_dir / "Film" / "Film.mkv")
    (library_dir / "Film" / "Film.fr.srt").write_text("1\n")
    assert run(settings, "explain", str(film)) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{film}\ndecision: do not queue\nbecause:\n   1. probed now\n")
    assert out.endswith(" s long, shorter than 60 s (LIBRARY_MIN_DURATION_SECONDS)\n")

    settings = settings.model_copy(update={"library_min_duration_seconds": 0})
    assert run(settings, "explain", str(film)) == 0
    out = capsys.readouterr().out
    assert "decision: queue (1 job)\n" in out
    assert "original (fr): has French subtitles: Film.fr.srt (sidecar)\n" in out
    assert "en: no English subtitles; to queue: translate the French audio into English\n" in out
    assert out.endswith("job: translate -> subtitles in en\n")


def test_explain_of_a_missing_file(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(settings, "explain", str(tmp_path / "nope.mkv")) == 1
    assert "does not exist" in capsys.readouterr().err


def test_scan_dry_run_then_scan(
    settings: Settings, kit: Kit, library_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings.model_copy(update={"library_min_duration_seconds": 0})
    film = place(kit.french, library_dir / "Film" / "Film.mkv", age=3600)
    place(kit.no_audio, library_dir / "Silent.mkv", age=3600)

    assert run(settings, "scan", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "(dry run: nothing queued or saved)" in out
    assert f"would queue (1):\n  {film}  [transcribe -> audio language, translate -> en]  because" in out
    assert f"not queued (1):\n  {library_dir / 'Silent.mkv'}: skipped: no audio stream" in out

    assert run(settings, "scan") == 0
    out = capsys.readouterr().out
    assert "queued (2):" in out and "2 ffprobe runs" in out
    assert run(settings, "scan") == 0
    assert "2 media files: 2 unchanged, 0 decided, 0 ffprobe runs" in capsys.readouterr().out
