"""The watcher keeps the scan's rule for symlinks out of the library (LIBRARY_FOLLOW_SYMLINKS), issue #16.

A symlink to a file outside the library, made while the service runs, is queued when the
setting is true (as the scan would) and left alone when it is false (as the scan leaves it).
A real file placed at the same time shows the watcher has looked at both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.library.conftest import Kit, LibraryMaker, eventually, place
from transcriptarr.db.models import JobState
from transcriptarr.library import Library

Start = Callable[..., Awaitable[Library]]


@pytest.fixture
async def start(make_library: LibraryMaker) -> AsyncIterator[Start]:
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(**options: Any) -> Library:
        library = make_library(**options)
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(library.run(stop))))
        await asyncio.wait_for(library.watcher.ready.wait(), 15)
        return library

    yield start
    for stop, _ in running:
        stop.set()
    await asyncio.wait_for(asyncio.gather(*(task for _, task in running)), 15)


async def queued_paths(make_library: LibraryMaker) -> set[str]:
    return {job.media_path or "" for job in await make_library.jobs() if job.state == JobState.QUEUED}


@pytest.mark.parametrize("follow", [True, False])
async def test_a_symlink_out_made_while_watching_follows_the_setting(
    start: Start, make_library: LibraryMaker, kit: Kit, library_dir: Path, tmp_path: Path, follow: bool
) -> None:
    outside = place(kit.french, tmp_path / "elsewhere" / "Outside.mkv")
    library = await start(follow_symlinks=follow)
    link = library_dir / "Linked.mkv"
    link.symlink_to(outside)
    real = place(kit.french, library_dir / "Real.mkv")

    await eventually(
        lambda: _has(make_library, str(real)), what="the watcher to queue the real file placed with the link"
    )
    await eventually(lambda: _settled(library), what="the watcher to settle")
    assert (str(link) in await queued_paths(make_library)) is follow


async def _has(make_library: LibraryMaker, path: str) -> bool:
    return path in await queued_paths(make_library)


async def _settled(library: Library) -> bool:
    return not library.settling_files()
