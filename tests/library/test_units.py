"""Small parts without files or a database: settling, departures, priorities, configuration, watch errors."""

from __future__ import annotations

import errno
from pathlib import Path
from types import SimpleNamespace

import pytest

from transcriptarr.db.models import Source
from transcriptarr.library.changes import Departures, Settling
from transcriptarr.library.config import (
    DEFAULT_VIDEO_EXTENSIONS,
    LibraryConfig,
    WatchedPath,
    parse_extensions,
    parse_polling_paths,
    parse_priority_order,
)
from transcriptarr.library.index import Known
from transcriptarr.library.priority import job_priority, priority_offset
from transcriptarr.library.scanner import distinct_roots
from transcriptarr.library.watcher import inotify_limit, watch_groups
from transcriptarr.settings import load_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_file_settles_only_after_the_window_without_change() -> None:
    clock = Clock()
    settling = Settling(5.0, clock)
    settling.touch("/m/a.mkv")
    assert settling.update({"/m/a.mkv": (100, 1)}) == []
    clock.now += 4
    assert settling.update({"/m/a.mkv": (200, 2)}) == [], "it grew: the window starts again"
    clock.now += 4.9
    assert settling.update({"/m/a.mkv": (200, 2)}) == []
    clock.now += 0.2
    assert settling.update({"/m/a.mkv": (200, 2)}) == ["/m/a.mkv"]
    assert settling.watched() == [], "handed on once"


def test_a_file_that_vanishes_while_settling_is_dropped() -> None:
    settling = Settling(1.0, Clock())
    settling.touch("/m/a.mkv")
    assert settling.update({"/m/a.mkv": None}) == [] and settling.watched() == []


def test_departures_pair_moves_and_expire() -> None:
    clock = Clock()
    departures = Departures(10.0, clock)
    departures.add("/m/old/Film.mkv", Known(100, 5, "c"))
    departures.add("/m/old/Other.mkv", Known(100, 5, "c"))
    assert departures.claim("/m/new/Film.mkv", 100, 5) == "/m/old/Film.mkv", "same name wins"
    assert departures.claim("/m/new/Renamed.mkv", 100, 6) is None
    clock.now += 10
    assert departures.expired() == ["/m/old/Other.mkv"] and departures.snapshot() == {}


def test_ambiguous_departures_are_not_guessed() -> None:
    departures = Departures(10.0, Clock())
    departures.add("/m/a.mkv", Known(1, 1, "c"))
    departures.add("/m/b.mkv", Known(1, 1, "c"))
    assert departures.claim("/m/c.mkv", 1, 1) is None


def test_priority_offsets_stay_inside_the_source_band() -> None:
    now = 2_000_000_000.0
    day = 86_400.0
    newest = [priority_offset("newest", size=1, mtime=now - age * day, now=now) for age in (0, 1, 30, 365, 3650, 9999)]
    assert newest == sorted(newest, reverse=True) and newest[0] == 99 and newest[-1] == 0
    assert priority_offset("oldest", size=1, mtime=now, now=now) == 0
    assert priority_offset("smallest", size=0, mtime=now, now=now) == 99
    assert priority_offset("smallest", size=10**12, mtime=now, now=now) == 0
    assert priority_offset("path", size=5, mtime=now, now=now) == 0
    assert job_priority(Source.SCAN, "newest", size=1, mtime=now, now=now) == 199
    assert job_priority(Source.WATCH, "oldest", size=1, mtime=now, now=now) == 200


def test_config_parsing() -> None:
    assert parse_extensions("mkv, .MP4", DEFAULT_VIDEO_EXTENSIONS) == {".mkv", ".mp4"}
    assert parse_extensions(None, DEFAULT_VIDEO_EXTENSIONS) == DEFAULT_VIDEO_EXTENSIONS
    assert parse_extensions("", DEFAULT_VIDEO_EXTENSIONS) == frozenset()
    assert parse_polling_paths("/mnt/nas|/mnt/smb=120|/a=b") == (
        (Path("/mnt/nas"), None),
        (Path("/mnt/smb"), 120.0),
        (Path("/a=b"), None),
    )
    assert parse_priority_order(" Oldest ") == "oldest"
    with pytest.raises(ValueError, match="newest, oldest, smallest, path"):
        parse_priority_order("random")


def test_config_from_the_service_settings(tmp_path: Path) -> None:
    (tmp_path / "nas").mkdir()
    (tmp_path / "local").mkdir()
    settings = load_settings(
        library_paths=f"{tmp_path / 'local'}|{tmp_path / 'nas'}",
        target_languages="original,EN",
        scan_interval_minutes=30,
        _env_file=None,
    )
    config = LibraryConfig.from_settings(settings)
    assert config.paths == (tmp_path / "local", tmp_path / "nas")
    assert config.rules.target_languages == ("original", "en")
    assert config.scan_interval_minutes == 30 and config.stable_seconds == 30.0
    # Settings this part proposes are read when the settings object has them.
    extended = SimpleNamespace(
        **{
            **{name: getattr(settings, name) for name in type(settings).model_fields},
            "library_polling_paths": f"{tmp_path / 'nas'}=90",
            "library_stable_seconds": 5,
            "skip_audio_languages": "en,de",
            "library_priority_order": "smallest",
        }
    )
    config = LibraryConfig.from_settings(extended)
    assert config.watched_paths() == [
        WatchedPath(tmp_path / "local", False, 30.0),
        WatchedPath(tmp_path / "nas", True, 90.0),
    ]
    assert (config.stable_seconds, config.rules.skip_audio_languages, config.priority_order) == (
        5.0,
        ("en", "de"),
        "smallest",
    )


def test_watch_groups_share_inotify_and_poll_each_folder() -> None:
    groups = watch_groups(
        [WatchedPath(Path("/a")), WatchedPath(Path("/b")), WatchedPath(Path("/nfs"), polling=True, poll_interval=60)]
    )
    assert [(g.paths, g.polling, g.poll_interval) for g in groups] == [
        (("/a", "/b"), False, 0.0),
        (("/nfs",), True, 60),
    ]


@pytest.mark.parametrize(
    ("error", "limit"),
    [
        (OSError("OS file watch limit reached. (Error { kind: MaxFilesWatch, paths: [] })"), "watches"),
        (OSError(errno.ENOSPC, "No space left on device"), "watches"),
        (RuntimeError("error in underlying watcher: No space left on device (os error 28)"), "watches"),
        (RuntimeError("Error creating recommended watcher: Too many open files (os error 24)"), "instances"),
        (FileNotFoundError("No such file or directory"), None),
    ],
)
def test_inotify_limits_are_recognised(error: BaseException, limit: str | None) -> None:
    assert inotify_limit(error) == limit


def test_nested_library_folders_are_walked_once() -> None:
    assert distinct_roots(["/media/tv", "/media", "/other", "/media2"]) == ["/media", "/media2", "/other"]
