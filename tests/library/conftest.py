"""Library tests: tiny real media made once per session, a Library on a fresh SQLite database.

Each test copies the media it needs into its own folder (tmp_path), so the files
are real (ffprobe reads them) and every test has its own inodes and mtimes.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.media_factory import make_silence, make_video, write_srt
from transcriptarr.db.database import Database
from transcriptarr.db.models import Job
from transcriptarr.library import Library, LibraryConfig, RulesConfig
from transcriptarr.library.prober import probe_file
from transcriptarr.media.probe import MediaInfo
from transcriptarr.queue.jobqueue import JobQueue
from transcriptarr.settings import to_async_url

T = TypeVar("T")


@dataclass(frozen=True)
class Kit:
    """One ready-made file per kind of media the rules tell apart (all about 2 s long)."""

    french: Path  # audio "fre", default
    english: Path  # audio "eng"
    untagged: Path  # audio without a language tag
    two_tracks: Path  # "eng" (not default) + "fre" (default)
    english_subtitles: Path  # French audio + embedded English text subtitles
    forced_english: Path  # French audio + embedded *forced* English subtitles
    no_audio: Path  # video only
    klingon: Path  # audio tagged "tlh": a language Whisper does not know
    not_media: Path  # bytes that ffprobe cannot read, named .mkv


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    base = tmp_path_factory.mktemp("kit")
    audio = make_silence(base / "silence.wav", 2.0)
    english_srt = write_srt(base / "en.srt", [(0.2, 1.0, "Hello")])

    def video(name: str, tracks: list[tuple[Path, str | None, bool]], **options: Any) -> Path:
        return make_video(base / name, tracks, **options)

    garbage = base / "garbage.mkv"
    garbage.write_bytes(b"this is not a matroska file" * 100)
    return Kit(
        french=video("french.mkv", [(audio, "fre", True)]),
        english=video("english.mkv", [(audio, "eng", True)]),
        untagged=video("untagged.mkv", [(audio, None, True)]),
        two_tracks=video("two.mkv", [(audio, "eng", False), (audio, "fre", True)]),
        english_subtitles=video("subs.mkv", [(audio, "fre", True)], subtitle_tracks=[(english_srt, "eng", False)]),
        forced_english=video("forced.mkv", [(audio, "fre", True)], subtitle_tracks=[(english_srt, "eng", True)]),
        no_audio=video("silent.mkv", [], duration=2.0),
        klingon=video("klingon.mkv", [(audio, "tlh", True)]),
        not_media=garbage,
    )


def place(source: Path, dest: Path, *, age: float = 0.0) -> Path:
    """A copy of a kit file at `dest` (folders made as needed), last modified `age` seconds ago."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    if age:
        then = time.time() - age
        os.utime(dest, (then, then))
    return dest


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(to_async_url(f"sqlite:///{tmp_path / 'library.db'}"))
    await database.upgrade()
    yield database
    await database.close()


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "library"
    folder.mkdir()
    return folder


class CountingProbe:
    """The real ffprobe, counting each run and the files it ran on."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    async def __call__(self, path: Path) -> MediaInfo:
        self.paths.append(path)
        return await probe_file(path)

    @property
    def count(self) -> int:
        return len(self.paths)


@dataclass
class LibraryMaker:
    db: Database
    queue: JobQueue
    folder: Path
    probe: CountingProbe
    wakes: list[float]

    def __call__(self, *, rules: dict[str, Any] | None = None, awatch_function: Any = None, **options: Any) -> Library:
        config = LibraryConfig(
            paths=(self.folder,),
            rules=replace(RulesConfig(min_duration_seconds=0), **(rules or {})),
            # No stability window unless a test asks: its files were all written a moment ago.
            **{"auto_scan": False, "stable_seconds": 0.0, **options},
        )
        return Library(
            self.db,
            self.queue,
            config,
            wake=lambda: self.wakes.append(time.monotonic()),
            probe=self.probe,
            debounce_ms=200,
            **({"awatch_function": awatch_function} if awatch_function else {}),
        )

    async def jobs(self) -> list[Job]:
        return sorted(await self.queue.list_jobs(limit=1000), key=lambda job: job.id)

    async def live_jobs(self) -> list[Job]:
        return [job for job in await self.jobs() if job.state in ("queued", "processing")]


@pytest.fixture
def make_library(db: Database, library_dir: Path) -> LibraryMaker:
    return LibraryMaker(db, JobQueue(db), library_dir, CountingProbe(), [])


async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or check}")
        await asyncio.sleep(interval)
