"""A subtitle the user saved is never overwritten, whatever the database is doing (issue #16, part 1).

Ownership is the content we wrote (its sha256, recorded before the rename) and is judged
from the file itself at the moment of the rename. The database stalls for real: a
PostgreSQL server of the test's own is frozen with SIGSTOP, and SQLite's write lock is
held by another connection (BEGIN IMMEDIATE), while the user saves their own subtitle
over ours. Before the fix the write waited for the database and then replaced it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.acceptance.engine_harness import engine_settings, process
from tests.faults.frozen_postgres import freeze, thaw
from tests.media_factory import fixture_path, make_video
from tests.servers import RunningServer
from transcriptarr.db.database import Database
from transcriptarr.db.models import JobState
from transcriptarr.settings import to_async_url
from transcriptarr.subtitles.owned_write import write_owned
from transcriptarr.subtitles.registry import MediaIdentity, SubtitleRegistry
from transcriptarr.subtitles.writer import TEMP_MARKER, content_hash

OURS = b"1\n00:00:01,000 --> 00:00:02,000\nwritten by Transcriptarr\n"
NEWER = b"1\n00:00:01,000 --> 00:00:02,500\nwritten by Transcriptarr, again\n"
USERS = b"1\n00:00:01,000 --> 00:00:02,000\nmy own careful subtitle\n"
MEDIA = MediaIdentity(size=1000, mtime_ns=1)


class SignallingRegistry(SubtitleRegistry):
    """The real registry; it says when a write begins to record a pending subtitle (then waits on the database).

    `before_record` runs first: the moment to stall the database (after the ownership was read)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.recording = asyncio.Event()
        self.before_record: Callable[[], None] = lambda: None

    async def begin_write(self, path: Path, **kwargs: object) -> None:  # type: ignore[override]
        self.before_record()
        self.recording.set()
        await super().begin_write(path, **kwargs)  # type: ignore[arg-type]


async def write(registry: SubtitleRegistry, path: Path, data: bytes) -> str | None:
    return await write_owned(
        registry, path, data, media_path=str(path.with_suffix(".mkv")), language="en", job_id=1, media=MEDIA
    )


async def recorded(registry: SubtitleRegistry, path: Path) -> set[str]:
    """The contents of `path` the registry counts as ours."""
    ownership = await registry.ownership(path)
    assert not ownership.any_content
    return set(ownership.hashes)


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if TEMP_MARKER in p.name]


# --------------------------------------------------------------------------- databases


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[tuple[Database, Path]]:
    file = tmp_path / "owned.db"
    db = Database(to_async_url(f"sqlite:///{file}"))
    await db.upgrade()
    yield db, file
    await db.close()


# --------------------------------------------------------------------------- the tests


async def test_our_subtitle_is_replaced_and_a_hand_edited_one_kept(
    sqlite_db: tuple[Database, Path], tmp_path: Path
) -> None:
    db, _ = sqlite_db
    registry = SubtitleRegistry(db)
    target = tmp_path / "Movie.en.srt"
    assert await write(registry, target, OURS) is None
    assert await write(registry, target, NEWER) is None, "what we wrote is ours to replace"
    assert target.read_bytes() == NEWER
    assert await recorded(registry, target) == {content_hash(NEWER)}

    target.write_bytes(USERS)  # the user edits our file by hand
    kept = await write(registry, target, OURS)
    assert kept is not None and "changed or replaced since Transcriptarr wrote it" in kept
    assert target.read_bytes() == USERS
    assert await recorded(registry, target) == {content_hash(NEWER)}, "nothing left pending"
    assert leftovers(tmp_path) == []


async def test_a_subtitle_saved_while_sqlite_is_locked_is_kept(
    sqlite_db: tuple[Database, Path], tmp_path: Path
) -> None:
    db, file = sqlite_db
    registry = SignallingRegistry(db)
    target = tmp_path / "Movie.en.srt"
    assert await write(registry, target, OURS) is None
    registry.recording.clear()

    # Another process holds SQLite's write lock: our pending record waits for it.
    blocker = sqlite3.connect(file, timeout=0, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        writing = asyncio.create_task(write(registry, target, NEWER))
        await asyncio.wait_for(registry.recording.wait(), 30)
        assert not writing.done()
        target.write_bytes(USERS)  # meanwhile the user saves their own subtitle
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    kept = await asyncio.wait_for(writing, 90)
    assert kept is not None and "not what Transcriptarr wrote" in kept
    assert target.read_bytes() == USERS
    assert await recorded(registry, target) == {content_hash(OURS)}
    assert leftovers(tmp_path) == []


@pytest.mark.slow
async def test_a_subtitle_saved_while_postgresql_is_frozen_is_kept(own_postgres: RunningServer, tmp_path: Path) -> None:
    db = Database(to_async_url(own_postgres.url))
    try:
        await db.upgrade()
        registry = SignallingRegistry(db)
        target = tmp_path / "Movie.en.srt"
        assert await write(registry, target, OURS) is None
        registry.recording.clear()

        # SIGSTOP as the pending record is written: connections stay open, statements never answer.
        registry.before_record = lambda: freeze(own_postgres)
        try:
            writing = asyncio.create_task(write(registry, target, NEWER))
            await asyncio.wait_for(registry.recording.wait(), 30)
            assert not writing.done()
            target.write_bytes(USERS)  # the user saves their own subtitle during the stall
        finally:
            thaw(own_postgres)
        kept = await asyncio.wait_for(writing, 120)
        assert kept is not None and "not what Transcriptarr wrote" in kept
        assert target.read_bytes() == USERS
        assert await recorded(registry, target) == {content_hash(OURS)}
        assert leftovers(tmp_path) == []
    finally:
        await db.close()


async def test_a_subtitle_created_where_there_was_none_is_not_clobbered(
    sqlite_db: tuple[Database, Path], tmp_path: Path
) -> None:
    """No subtitle when the job looked, one by the time of the rename: the user's, kept."""
    db, file = sqlite_db
    registry = SignallingRegistry(db)
    target = tmp_path / "Show.en.srt"
    blocker = sqlite3.connect(file, timeout=0, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        writing = asyncio.create_task(write(registry, target, OURS))
        await asyncio.wait_for(registry.recording.wait(), 30)
        target.write_bytes(USERS)
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    kept = await asyncio.wait_for(writing, 90)
    assert kept == "exists and was not written by Transcriptarr"
    assert target.read_bytes() == USERS
    assert await recorded(registry, target) == set(), "the pending record is withdrawn"


@pytest.mark.slow
async def test_a_hand_replaced_subtitle_survives_a_manual_rerun(tmp_path: Path) -> None:
    """The real pipeline: our X.en.srt replaced by hand, then the file queued again by hand."""
    lib = tmp_path / "lib"
    lib.mkdir()
    movie = make_video(lib / "Kennedy.mkv", [(fixture_path("jfk.flac"), "eng", True)])
    settings = engine_settings(tmp_path)
    [first] = await process(settings, [movie])
    subtitle = lib / "Kennedy.en.srt"
    assert first.state == JobState.COMPLETED and first.result_path == str(subtitle), first.error
    subtitle.write_bytes(USERS)

    [again] = await process(settings, [movie], target_language="en")  # `transcriptarr enqueue --language en`
    assert again.id != first.id and again.state == JobState.COMPLETED, again.error
    assert again.result_path is None
    assert "changed or replaced since Transcriptarr wrote it" in again.details["skipped"]
    assert subtitle.read_bytes() == USERS
