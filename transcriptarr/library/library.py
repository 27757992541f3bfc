"""The library part of the service: start-up scan, periodic rescans and the watcher.

    library = Library(db, queue, LibraryConfig.from_settings(settings), wake=pool.wake)
    await library.run(stop)          # until `stop` is set
    report = await library.scan()    # a scan now (`dry_run=True`: decide, queue nothing)
    decision = await library.explain("/media/Movie (2020)/Movie.mkv")

Watcher events go through two waiting rooms (library/changes.py): an added or
changed file is decided once it has been still for LIBRARY_STABLE_SECONDS, and a
deleted one is only given up after that window plus a few seconds, in case it
reappears elsewhere (a move: its jobs follow it).
"""

# Paths are plain str throughout the library package (index keys, tens of thousands per scan): os.path.
# ruff: noqa: PTH119, PTH120, PTH122

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Sequence

import structlog
from watchfiles import Change, awatch

from transcriptarr.db.database import Database
from transcriptarr.db.models import Source
from transcriptarr.db.outage import describe_error, is_unavailable
from transcriptarr.library.changes import Departures, Settling, observe
from transcriptarr.library.config import LibraryConfig
from transcriptarr.library.index import Known
from transcriptarr.library.jobsync import JobSync
from transcriptarr.library.prober import ProbeFunction, Prober, probe_file
from transcriptarr.library.rules import Decision
from transcriptarr.library.scanner import Scanner, ScanReport
from transcriptarr.library.sidecars import SUBTITLE_FOLDERS, candidate_stems, subtitle_extension
from transcriptarr.library.walker import WalkReport, walk
from transcriptarr.library.watcher import AwatchFunction, ChangeSet, LibraryWatcher
from transcriptarr.policy.names import IGNORE_MARKER, is_hidden, partial_download_suffix
from transcriptarr.queue.jobqueue import JobQueue

log = structlog.get_logger(__name__)

# A deleted file is kept this much longer than the stability window before its jobs are
# cancelled: long enough for the other half of a move to arrive.
_MOVE_GRACE_SECONDS = 5.0


class Library:
    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        config: LibraryConfig,
        *,
        wake: Callable[[], None] = lambda: None,
        probe: ProbeFunction = probe_file,
        awatch_function: AwatchFunction = awatch,
        debounce_ms: int = 1600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._db, self._queue, self._wake, self._probe = db, queue, wake, probe  # for `with_config`
        self.prober = Prober(config.probe_concurrency, probe)
        self.scanner = Scanner(db, JobSync(queue, config), config, self.prober, wake=wake)
        self.settling = Settling(config.stable_seconds, clock)
        self.departures = Departures(config.stable_seconds + _MOVE_GRACE_SECONDS, clock)
        self.watcher = LibraryWatcher(
            config.watched_paths(),
            self._on_changes,
            debounce_ms=debounce_ms,
            fallback_poll_interval=config.poll_interval,
            awatch_function=awatch_function,
        )
        self._scanning = asyncio.Lock()  # one scan at a time (periodic, CLI, start-up)

    def with_config(self, config: LibraryConfig) -> Library:
        """The same library (database, queue, workers to wake) deciding by `config`: SubGen's /batch with a
        forced language. Nothing is shared but those: it is not run, only asked."""
        return Library(self._db, self._queue, config, wake=self._wake, probe=self._probe)

    @property
    def probes(self) -> int:
        """ffprobe runs since start; tests and the benchmark count them."""
        return self.prober.count

    # --- public API ---------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Start-up scan, periodic rescans and the watcher, until `stop` is set."""
        if not self.config.paths:
            log.info("library_disabled", reason="LIBRARY_PATHS is empty")
            return
        # The waiting room runs without the watcher too: a file a scan found still being
        # written is looked at again once it settles, not at the next scan hours later.
        work = [self._scan_periodically(stop), self._settle(stop)]
        if self.config.watch:
            work.append(self.watcher.run(stop))
        await asyncio.gather(*work)

    async def scan(self, *, dry_run: bool = False) -> ScanReport:
        async with self._scanning:
            report = await self.scanner.scan(dry_run=dry_run)
        if not dry_run:
            # Files still being written wait in the waiting room until they stop changing.
            for path in report.fresh:
                self.settling.touch(path)
        return report

    async def explain(self, path: str | os.PathLike[str]) -> Decision:
        # abspath, not realpath: a symlinked file is judged where it sits in the library.
        return await self.scanner.explain(await asyncio.to_thread(os.path.abspath, os.fspath(path)))

    # --- scans ----------------------------------------------------------------------

    async def _scan_periodically(self, stop: asyncio.Event) -> None:
        if self.config.scan_on_startup:
            await self._scan_safely()
        if not self.config.auto_scan:
            return
        interval = self.config.scan_interval_minutes * 60
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if not stop.is_set():
                await self._scan_safely()

    async def _scan_safely(self) -> None:
        try:
            await self.scan()
        except Exception:  # a failed scan (database down, ...) is retried at the next interval
            log.exception("scan_failed")

    # --- watcher events ---------------------------------------------------------------

    async def _on_changes(self, changes: ChangeSet) -> None:
        try:
            # Deletions first: the other half of a rename in the same batch finds them.
            for path in sorted(p for change, p in changes if change == Change.deleted):
                await self._departed(path)
            for path in sorted(p for change, p in changes if change != Change.deleted):
                await self._arrived(path)
        except Exception as exc:  # one bad event must not stop the watcher; the next scan catches up
            if is_unavailable(exc):
                log.warning("watch_event_failed", changes=len(changes), error=describe_error(exc))
            else:
                log.exception("watch_event_failed", changes=len(changes))

    async def _departed(self, path: str) -> None:
        self.settling.discard(path)
        if await asyncio.to_thread(os.path.lexists, path):
            return  # deleted and created again: the "added" event handles it
        name = os.path.basename(path)
        if name == IGNORE_MARKER:
            await self._rescan_folder(os.path.dirname(path))
        elif subtitle_extension(name):
            await self._subtitles_changed(path)
        elif name.lower() in SUBTITLE_FOLDERS:
            await self._refresh_folder(os.path.dirname(path))
        else:
            row = await self.scanner.index.get(path)
            rows = [row] if row is not None else await self.scanner.index.under(path)  # a folder
            for item in rows:
                self.departures.add(item.path, Known(item.size, item.mtime_ns, item.context))

    async def _arrived(self, path: str) -> None:
        if self.scanner.root_of(path) is None:
            return
        if not self.config.follow_symlinks and await asyncio.to_thread(os.path.islink, path):
            return  # LIBRARY_FOLLOW_SYMLINKS=false: the scan does not follow it either
        name = os.path.basename(path)
        if name == IGNORE_MARKER:
            await self._rescan_folder(os.path.dirname(path))
        elif await asyncio.to_thread(os.path.isdir, path):
            await self._folder_arrived(path)
        elif subtitle_extension(name):
            await self._subtitles_changed(path)
        elif self._watchable(name):
            self.departures.cancel(path)
            if not await self._moved_here(path):
                self.settling.touch(path)

    def _watchable(self, name: str) -> bool:
        ext = os.path.splitext(name)[1].lower()
        rules = self.config.rules
        media = ext in rules.video_extensions or ext in rules.audio_extensions
        return media and not is_hidden(name) and partial_download_suffix(name) is None

    async def _moved_here(self, path: str) -> bool:
        """If `path` is a file that just departed elsewhere, move it (no waiting, no probe)."""
        seen = (await asyncio.to_thread(observe, [path]))[path]
        if seen is None:
            return False
        old = self.departures.claim(path, *seen)
        if old is None:
            return False
        await self.scanner.move(old, path)
        return True

    async def _folder_arrived(self, folder: str) -> None:
        """A folder moved or copied in: each media or subtitle file in it as if it had been added."""
        files = await asyncio.to_thread(self._files_in, folder)
        for path in files:
            await self._arrived(path)

    def _files_in(self, folder: str) -> list[str]:
        found = []
        for listed in walk(folder, WalkReport(), follow_symlinks=self.config.follow_symlinks):
            found += [e.path for e in listed.files if self._watchable(e.name) or subtitle_extension(e.name)]
        return sorted(found)

    async def _subtitles_changed(self, subtitle: str) -> None:
        """A subtitle appeared or went: decide again for the media files it may belong to."""
        folder = os.path.dirname(subtitle)
        if os.path.basename(folder).lower() in SUBTITLE_FOLDERS:
            folder = os.path.dirname(folder)
        await self._refresh_folder(folder, set(candidate_stems(os.path.basename(subtitle))))

    async def _refresh_folder(self, folder: str, stems: set[str] | None = None) -> None:
        """Decide again for the media files of `folder` (those with one of `stems`, if given)."""
        settling = set(self.settling.watched())
        for media in await asyncio.to_thread(self._media_in_folder, folder):
            stem = os.path.splitext(os.path.basename(media))[0].lower()
            # A media file still being copied is decided when complete, with the subtitles then.
            if (stems is None or stem in stems) and media not in settling:
                await self.scanner.refresh(media)

    def _media_in_folder(self, folder: str) -> list[str]:
        try:
            with os.scandir(folder) as entries:
                return sorted(e.path for e in entries if self._watchable(e.name) and e.is_file())
        except OSError:
            return []

    async def _rescan_folder(self, folder: str) -> None:
        """An ignore marker came or went: decide again for everything under its folder."""
        root = self.scanner.root_of(folder)
        if root is None:
            return
        # Not behind the scan lock: a long first scan must not hold up the watcher, and
        # everything a scan does is safe to repeat (queueing, cancelling, index rows).
        known = await self.scanner.index.load()
        await self.scanner.scan_folder(folder, root, known, source=Source.WATCH)

    # --- the waiting rooms ---------------------------------------------------------------

    async def _settle(self, stop: asyncio.Event) -> None:
        tick = min(1.0, max(0.05, self.config.stable_seconds / 4))
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick)
            try:
                await self._settle_once()
            except Exception as exc:
                if is_unavailable(exc):
                    log.warning("watch_event_failed", error=describe_error(exc))
                else:
                    log.exception("watch_event_failed")

    async def _settle_once(self) -> None:
        watched = self.settling.watched()
        if watched:
            observations = await asyncio.to_thread(observe, watched)
            for path in self.settling.update(observations):
                seen = observations[path]
                assert seen is not None
                await self._settled(path, seen)
        gone = self.departures.expired()
        if gone:
            await self.scanner.forget(gone, "file deleted")

    async def _settled(self, path: str, seen: tuple[int, int]) -> None:
        log.debug("file_settled", path=path, size=seen[0])
        old = self.departures.claim(path, *seen)  # a move across file systems: copy, then delete
        if old is not None:
            await self.scanner.move(old, path)
        else:
            await self.scanner.refresh(path)

    def settling_files(self) -> Sequence[str]:
        return self.settling.watched()
