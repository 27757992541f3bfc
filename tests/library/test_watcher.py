"""The real watcher on real folders: complete files only, moves, deletions, new subtitles, polling.

Every wait is a poll with a deadline (`eventually`) or an event; `asyncio.sleep` only
paces the slow writer that simulates a copy in progress.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from watchfiles import awatch

from tests.library.conftest import Kit, LibraryMaker, eventually, place
from transcriptarr.db.models import Job, JobState, Source
from transcriptarr.library import Library

Start = Callable[..., Awaitable[Library]]
HOUR = 3600.0  # files there before the service started: an existing library


@pytest.fixture
async def start(make_library: LibraryMaker) -> AsyncIterator[Start]:
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(**options: Any) -> Library:
        library = make_library(**{"stable_seconds": 1.0, **options})
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(library.run(stop))))
        await asyncio.wait_for(library.watcher.ready.wait(), 15)
        return library

    yield start
    for stop, _ in running:
        stop.set()
    await asyncio.wait_for(asyncio.gather(*(task for _, task in running)), 15)


def jobs_for(make_library: LibraryMaker, path: Path, *states: str) -> Callable[[], Awaitable[list[Job]]]:
    async def check() -> list[Job]:
        return [j for j in await make_library.jobs() if j.media_path == str(path) and (not states or j.state in states)]

    return check


async def queued_at_start(make_library: LibraryMaker, path: Path) -> Job:
    [job] = await eventually(jobs_for(make_library, path, JobState.QUEUED), what=f"start-up scan to queue {path}")
    return job


async def test_a_file_written_in_chunks_is_queued_once_after_it_is_complete(
    start: Start, make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    library = await start(stable_seconds=1.5)
    data = kit.french.read_bytes()
    film = library_dir / "Film (2020)" / "Film (2020).mkv"
    film.parent.mkdir()
    pieces = 8
    step = len(data) // pieces + 1
    with film.open("wb") as handle:
        for offset in range(0, len(data), step):
            handle.write(data[offset : offset + step])
            handle.flush()
            await asyncio.sleep(0.4)  # a slow copy: about 3 s in all, never still for 1.5 s
            assert await make_library.jobs() == [], "nothing is queued while the file is being written"
            assert make_library.probe.count == 0, "nothing is probed while the file is being written"
    complete = datetime.now(UTC)

    [job] = await eventually(jobs_for(make_library, film), what="the complete file to be queued")
    assert job.created_at >= complete
    assert (job.source, job.media_size, job.state) == (Source.WATCH, len(data), JobState.QUEUED)
    assert 200 <= job.priority <= 299
    await eventually(lambda: _settled(library), what="the watcher to settle")
    assert len(await make_library.jobs()) == 1 and make_library.probe.paths == [film]


async def _settled(library: Library) -> bool:
    return not library.settling_files()


async def test_a_renamed_file_takes_its_queued_job_along(
    start: Start, make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    film = place(kit.french, library_dir / "Film" / "film.mkv", age=HOUR)
    await start()
    old = await queued_at_start(make_library, film)
    probes = make_library.probe.count
    renamed = film.with_name("Film (2020).mkv")
    film.rename(renamed)

    [new] = await eventually(jobs_for(make_library, renamed, JobState.QUEUED), what="the job to follow the rename")
    cancelled = await make_library.queue.get(old.id)
    assert (cancelled.state, cancelled.error) == (JobState.CANCELLED, f"moved to {renamed}")
    assert (new.source, new.priority, new.details["moved_from"]) == (Source.SCAN, old.priority, str(film))
    assert make_library.probe.count == probes, "a moved file is not probed again"


async def test_a_file_moved_to_another_folder_takes_its_queued_job_along(
    start: Start, make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    film = place(kit.french, library_dir / "Incoming" / "Film.mkv", age=HOUR)
    await start()
    old = await queued_at_start(make_library, film)
    await make_library.queue.set_priority(old.id, 650)
    target = library_dir / "Films" / "Film (2020)" / "Film.mkv"
    target.parent.mkdir(parents=True)
    film.rename(target)

    [new] = await eventually(jobs_for(make_library, target, JobState.QUEUED), what="the job to follow the move")
    assert new.priority == 650, "a priority set by hand moves with the file"
    assert (await make_library.queue.get(old.id)).error == f"moved to {target}"


async def test_a_renamed_folder_takes_the_jobs_of_its_files_along(
    start: Start, make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    episodes = [place(kit.french, library_dir / "Show" / "Season 1" / f"E0{n}.mkv", age=HOUR) for n in (1, 2)]
    await start()
    for episode in episodes:
        await queued_at_start(make_library, episode)
    probes = make_library.probe.count
    (library_dir / "Show" / "Season 1").rename(library_dir / "Show" / "Season 01")

    for episode in episodes:
        moved = library_dir / "Show" / "Season 01" / episode.name
        await eventually(jobs_for(make_library, moved, JobState.QUEUED), what=f"the job of {episode.name} to follow")
    assert len(await make_library.live_jobs()) == 2 and make_library.probe.count == probes


async def test_a_deleted_file_has_its_queued_job_cancelled(
    start: Start, make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    film = place(kit.french, library_dir / "Film.mkv", age=HOUR)
    await start()
    job = await queued_at_start(make_library, film)
    film.unlink()

    [cancelled] = await eventually(jobs_for(make_library, film, JobState.CANCELLED), what="the job to be cancelled")
    assert cancelled.id == job.id and cancelled.error == f"file deleted: {film}"


async def test_a_sidecar_added_later_cancels_the_queued_job(
    start: Start, make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    film = place(kit.french, library_dir / "Film.mkv", age=HOUR)
    await start(rules={"target_languages": ("en",)})
    job = await queued_at_start(make_library, film)
    assert job.task == "translate"
    (library_dir / "Film.en.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nHello\n")

    [cancelled] = await eventually(jobs_for(make_library, film, JobState.CANCELLED), what="the job to be cancelled")
    assert cancelled.error == "no longer needed: en: has English subtitles: Film.en.srt (sidecar)"


async def test_a_folder_marked_ignored_later_loses_its_jobs(
    start: Start, make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    film = place(kit.french, library_dir / "Home Videos" / "Party.mkv", age=HOUR)
    await start()
    await queued_at_start(make_library, film)
    (library_dir / "Home Videos" / ".transcriptarr-ignore").touch()
    [cancelled] = await eventually(jobs_for(make_library, film, JobState.CANCELLED), what="the job to be cancelled")
    assert ".transcriptarr-ignore" in (cancelled.error or "")


async def test_polling_a_library_folder(start: Start, make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        library = await start(polling_paths=((library_dir, 0.3),))
    [group] = library.watcher.groups
    assert group.polling and group.poll_interval == 0.3
    assert {"event": "watching_folders", "mode": "polling"}.items() <= next(
        entry for entry in logs if entry["event"] == "watching_folders"
    ).items()
    film = library_dir / "Film.mkv"
    place(kit.french, library_dir / "staging" / "Film.mkv").rename(film)
    [job] = await eventually(jobs_for(make_library, film, JobState.QUEUED), what="polling to find the new file")
    assert job.source == Source.WATCH


async def test_the_inotify_watch_limit_falls_back_to_polling(
    start: Start, make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    calls: list[bool] = []

    def limited_awatch(*paths: str, **options: Any) -> Any:
        calls.append(bool(options["force_polling"]))
        if not options["force_polling"]:
            # What watchfiles raises when adding a watch fails with ENOSPC.
            raise OSError("OS file watch limit reached. (Error { kind: MaxFilesWatch, paths: [] })")
        return awatch(*paths, **options)

    with structlog.testing.capture_logs() as logs:
        library = await start(awatch_function=limited_awatch, poll_interval=0.3)
    assert calls == [False, True]
    [warning] = [entry for entry in logs if entry["event"] == "inotify_limit_reached"]
    assert warning["limit"] == "fs.inotify.max_user_watches" and "sysctl fs.inotify.max_user_watches=" in warning["fix"]
    assert library.watcher.polling_fallbacks

    film = place(kit.french, library_dir / "Film.mkv")
    await eventually(jobs_for(make_library, film, JobState.QUEUED), what="polling to find the new file")


async def test_a_partial_download_is_queued_under_its_final_name(
    start: Start, make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    await start()
    partial = place(kit.french, library_dir / "Film.mkv.!qB")
    os.rename(partial, library_dir / "Film.mkv")
    [job] = await eventually(jobs_for(make_library, library_dir / "Film.mkv", JobState.QUEUED), what="the job")
    assert job.media_path == str(library_dir / "Film.mkv")
    assert [Path(p).name for p in make_library.probe.paths] == ["Film.mkv"]


async def test_a_file_written_just_before_start_up_is_decided_once_still(
    start: Start, make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    film = place(kit.french, library_dir / "Just Copied.mkv")  # modified a moment ago
    library = await start()
    [job] = await eventually(jobs_for(make_library, film, JobState.QUEUED), what="the settled file to be queued")
    assert job.source == Source.WATCH, "the start-up scan left it to the watcher's waiting room"
    await eventually(lambda: _settled(library), what="the watcher to settle")
    assert make_library.probe.paths == [film]


async def test_a_folder_copied_in_is_decided_with_its_subtitle_folder(
    start: Start, make_library: LibraryMaker, kit: Kit, library_dir: Path, tmp_path: Path
) -> None:
    import shutil

    from transcriptarr.library.index import MediaIndex

    staging = tmp_path / "downloads" / "Films"
    place(kit.french, staging / "Covered" / "Covered.mkv")
    (staging / "Covered" / "Subs").mkdir()
    (staging / "Covered" / "Subs" / "Covered.fre.srt").write_text("1\n")
    place(kit.french, staging / "Bare" / "Bare.mkv")
    await start()
    shutil.copytree(staging, library_dir / "Films")

    bare = library_dir / "Films" / "Bare" / "Bare.mkv"
    await eventually(jobs_for(make_library, bare, JobState.QUEUED), what="the new film without subtitles")
    covered = str(library_dir / "Films" / "Covered" / "Covered.mkv")
    index = MediaIndex(make_library.db)
    row = await eventually(lambda: index.get(covered), what="the film with subtitles to be decided")
    assert not row.queued and "has French subtitles: Covered.fre.srt (sidecar)" in " ".join(row.reasons)
    assert [job.media_path for job in await make_library.jobs()] == [str(bare)]


async def test_with_watching_off_a_file_still_being_written_at_the_scan_is_queued_once_it_settles(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    """MONITOR=False / LIBRARY_WATCH=false: the start-up scan's fresh files are not left to the next scan."""
    film = place(kit.french, library_dir / "Film (2020)" / "Film (2020).mkv")  # modified just now
    library = make_library(stable_seconds=1.0, watch=False)
    stop = asyncio.Event()
    task = asyncio.create_task(library.run(stop))
    try:
        [job] = await eventually(
            jobs_for(make_library, film, JobState.QUEUED), what="the settled file to be queued without the watcher"
        )
        assert job.media_size == film.stat().st_size
        await eventually(lambda: _settled(library), what="the waiting room to empty")
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
