"""Scanning: walk -> stat -> compare with the index -> probe what is new -> decide -> queue.

A file whose size, mtime and context (the subtitle names next to it and the rule
settings) match its index row is not looked at again: a rescan of an unchanged
library costs a walk, one stat per media file and one index query, and runs no
ffprobe. New and changed files are probed a bounded number at a time; a file that
moved (same size and mtime, new path) keeps its probe result and its jobs follow it.
"""

# Paths are plain str throughout the library package (index keys, tens of thousands per scan): os.path.
# ruff: noqa: PTH100, PTH113, PTH114, PTH116, PTH118, PTH119, PTH120

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from transcriptarr.db.database import Database
from transcriptarr.db.models import Source, utcnow
from transcriptarr.library.config import LibraryConfig
from transcriptarr.library.index import IndexRow, Known, MediaIndex
from transcriptarr.library.jobsync import FileState, JobSync, QueueAction
from transcriptarr.library.priority import sort_key
from transcriptarr.library.prober import Prober
from transcriptarr.library.rules import Decision, WrittenSubtitle, decide, screen
from transcriptarr.library.sidecars import (
    SUBTITLE_EXTENSIONS,
    SUBTITLE_FOLDERS,
    Sidecar,
    candidate_stems,
    match_sidecars,
    subtitle_extension,
)
from transcriptarr.library.walker import Folder, WalkReport, walk
from transcriptarr.media.probe import MediaInfo, ProbeError, incomplete_media
from transcriptarr.policy.names import IGNORE_MARKER
from transcriptarr.subtitles.registry import SubtitleRegistry

log = structlog.get_logger(__name__)

# Files decided, queued and saved to the index together; bounds memory on a first scan.
_BATCH = 200


@dataclass
class Candidate:
    """A media file that needs a (new) decision."""

    path: str
    root: str
    size: int
    mtime: float
    mtime_ns: int
    context: str
    subtitles_here: Sequence[str]  # subtitle file names in its folder
    subtitle_folders: Mapping[str, Sequence[str]]  # "Subs" -> subtitle file names in it
    change: str  # new, changed, context (subtitles or rules changed), moved
    moved_from: str | None = None
    # The folder's media file names: a subtitle named after a longer one of them is that file's.
    media_here: Sequence[str] = ()


@dataclass
class Survey:
    """One walk of one folder tree, compared with the index."""

    seen: set[str] = field(default_factory=set)
    candidates: list[Candidate] = field(default_factory=list)
    unchanged: int = 0
    fresh: list[str] = field(default_factory=list)  # modified within the stability window
    walk: WalkReport = field(default_factory=WalkReport)


@dataclass
class ScanReport:
    dry_run: bool = False
    folders: list[str] = field(default_factory=list)
    media_files: int = 0
    unchanged: int = 0
    # Modified within the stability window (most likely still being copied): decided later.
    fresh: list[str] = field(default_factory=list)
    probes: int = 0
    decided: list[tuple[str, Decision]] = field(default_factory=list)
    actions: list[QueueAction] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def queued(self) -> list[QueueAction]:
        return [a for a in self.actions if a.action == "queued"]

    @property
    def cancelled(self) -> list[QueueAction]:
        return [a for a in self.actions if a.action == "cancelled"]

    def merge(self, other: ScanReport) -> None:
        for name in ("folders", "fresh", "decided", "actions", "moved", "removed", "problems"):
            getattr(self, name).extend(getattr(other, name))
        self.media_files += other.media_files
        self.unchanged += other.unchanged
        self.probes += other.probes


@dataclass(frozen=True)
class _Ours:
    """A subtitle we wrote for a media file, and the media's (size, mtime_ns) it was made from."""

    subtitle: WrittenSubtitle
    made_from: tuple[int, int] | None  # None: written before this was recorded


@dataclass(frozen=True)
class _Evaluation:
    candidate: Candidate
    decision: Decision
    probe: dict[str, object] | None
    probe_error: str | None


def sidecar_context(base: str, names: Sequence[str]) -> str:
    """What the decision depends on besides the file: rule settings and the subtitle names."""
    if not names:
        return base
    return hashlib.sha256("\0".join([base, *sorted(names)]).encode("utf-8", "surrogateescape")).hexdigest()


def distinct_roots(paths: Iterable[str]) -> list[str]:
    """Library folders without those inside another one (they would be walked twice)."""
    roots = sorted({os.path.abspath(p) for p in paths})
    return [r for r in roots if not any(r != o and r.startswith(o.rstrip(os.sep) + os.sep) for o in roots)]


class Scanner:
    def __init__(
        self,
        db: Database,
        sync: JobSync,
        config: LibraryConfig,
        prober: Prober,
        *,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.index = MediaIndex(db)
        self.written = SubtitleRegistry(db)
        self.sync = sync
        self.config = config
        self.prober = prober
        self.wake = wake
        self.roots = distinct_roots(str(p) for p in config.paths)
        self.context_base = config.rules.fingerprint()
        self._media_extensions = config.rules.video_extensions | config.rules.audio_extensions

    def root_of(self, path: str) -> str | None:
        return next((r for r in self.roots if path == r or path.startswith(r.rstrip(os.sep) + os.sep)), None)

    # --- full scans -------------------------------------------------------------

    async def scan(self, *, dry_run: bool = False, source: Source = Source.SCAN) -> ScanReport:
        started = time.monotonic()
        log.info("scan_started", folders=self.roots, dry_run=dry_run)
        report = ScanReport(dry_run=dry_run)
        known = await self.index.load()
        for root in self.roots:
            report.merge(await self.scan_folder(root, root, known, dry_run=dry_run, source=source))
        report.seconds = round(time.monotonic() - started, 3)
        log.info(
            "scan_finished",
            dry_run=dry_run,
            media_files=report.media_files,
            unchanged=report.unchanged,
            probes=report.probes,
            queued=len(report.queued),
            cancelled=len(report.cancelled),
            moved=len(report.moved),
            removed=len(report.removed),
            problems=len(report.problems),
            seconds=report.seconds,
        )
        return report

    async def scan_folder(
        self,
        start: str,
        root: str,
        known: Mapping[str, Known],
        *,
        dry_run: bool = False,
        source: Source = Source.SCAN,
    ) -> ScanReport:
        """Scan the tree at `start` inside library folder `root`."""
        report = ScanReport(dry_run=dry_run, folders=[start])
        probes_before = self.prober.count
        survey = await asyncio.to_thread(self._survey, start, root, known)
        report.media_files, report.unchanged, report.fresh = len(survey.seen), survey.unchanged, survey.fresh
        report.problems += [f"cannot read folder {path}" for path in survey.walk.unreadable]
        report.problems += [f"skipped {path!r}: {reason}" for path, reason in survey.walk.skipped]
        gone = self._gone(start, known, survey)
        _pair_moves(survey.candidates, gone, known)
        moved_from = {c.moved_from for c in survey.candidates if c.moved_from}
        await self._process(survey.candidates, report, source=source, dry_run=dry_run)
        await self._forget([p for p in gone if p not in moved_from], survey.walk, report, dry_run=dry_run)
        report.probes = self.prober.count - probes_before
        return report

    def _survey(self, start: str, root: str, known: Mapping[str, Known]) -> Survey:
        """Walk and compare with the index (in a thread: all of it is blocking file system work)."""
        survey = Survey()
        folders = {
            folder.path: folder for folder in walk(start, survey.walk, follow_symlinks=self.config.follow_symlinks)
        }
        for folder in folders.values():
            self._survey_folder(folder, folders, root, known, survey)
        return survey

    def _survey_folder(
        self, folder: Folder, folders: Mapping[str, Folder], root: str, known: Mapping[str, Known], survey: Survey
    ) -> None:
        media: list[os.DirEntry[str]] = []
        subtitles: list[str] = []
        for entry in folder.files:
            name = entry.name
            ext = name[name.rfind(".") :].lower()
            if ext in self._media_extensions:
                media.append(entry)
            elif ext in SUBTITLE_EXTENSIONS:
                subtitles.append(name)
        if not media:
            return
        subtitle_folders = {
            name: _subtitle_names(folders.get(os.path.join(folder.path, name)))
            for name in folder.subfolders
            if name.lower() in SUBTITLE_FOLDERS
        }
        by_stem = _names_by_stem(subtitles, subtitle_folders)
        media_names = [entry.name for entry in media]
        now, window = self.clock(), self.config.stable_seconds
        for entry in media:
            try:
                info = entry.stat()
            except OSError as exc:  # vanished since the listing, or unreadable
                log.debug("file_vanished", path=entry.path, error=str(exc))
                continue
            path = entry.path
            survey.seen.add(path)
            stem = entry.name[: entry.name.rfind(".")].lower()
            context = sidecar_context(self.context_base, by_stem.get(stem, ()))
            old = known.get(path)
            if old is not None and (old.size, old.mtime_ns, old.context) == (info.st_size, info.st_mtime_ns, context):
                survey.unchanged += 1
                continue
            if 0 <= now - info.st_mtime < window:
                survey.fresh.append(path)  # being copied, most likely: not probed half-written
                continue
            change = "new" if old is None else "changed" if old.context == context else "context"
            survey.candidates.append(
                Candidate(
                    path,
                    root,
                    info.st_size,
                    info.st_mtime,
                    info.st_mtime_ns,
                    context,
                    subtitles,
                    subtitle_folders,
                    change,
                    media_here=media_names,
                )
            )

    def _gone(self, start: str, known: Mapping[str, Known], survey: Survey) -> dict[str, Known]:
        """Index rows under `start` whose file was not found, where the walk could tell."""
        prefix = start.rstrip(os.sep) + os.sep
        missing = {p: k for p, k in known.items() if p.startswith(prefix) and p not in survey.seen}
        if start in survey.walk.unreadable:
            return {}
        if missing and not survey.seen and not survey.walk.ignored:
            # An empty library folder that had files: most likely an unmounted share.
            log.warning("library_folder_empty", path=start, indexed_files=len(missing))
            return {}
        blind = [folder.rstrip(os.sep) + os.sep for folder in survey.walk.unreadable]
        return {p: k for p, k in missing.items() if not any(p.startswith(b) for b in blind)}

    # --- single files (the watcher) -----------------------------------------------

    async def refresh(self, path: str, *, source: Source = Source.WATCH) -> ScanReport:
        """Look at one file again; decide only if it changed since the index saw it."""
        report = ScanReport()
        root = self.root_of(path)
        candidate = await asyncio.to_thread(self._candidate, path, root) if root else None
        if candidate is None:
            return report
        old = await self.index.get(path)
        if old is not None and (old.size, old.mtime_ns, old.context) == (
            candidate.size,
            candidate.mtime_ns,
            candidate.context,
        ):
            report.unchanged = 1
            return report
        candidate.change = "new" if old is None else "changed" if old.context == candidate.context else "context"
        probes_before = self.prober.count
        await self._process([candidate], report, source=source, dry_run=False)
        report.probes = self.prober.count - probes_before
        return report

    async def move(self, old_path: str, new_path: str, *, source: Source = Source.WATCH) -> ScanReport:
        """`old_path` was renamed to `new_path`: keep its probe, let its jobs follow."""
        report = ScanReport()
        root = self.root_of(new_path)
        candidate = await asyncio.to_thread(self._candidate, new_path, root) if root else None
        if candidate is None:
            await self.forget([old_path], f"moved out of the library to {new_path}", report)
            return report
        candidate.change, candidate.moved_from = "moved", old_path
        await self._process([candidate], report, source=source, dry_run=False)
        return report

    async def forget(self, paths: Sequence[str], reason: str, report: ScanReport | None = None) -> ScanReport:
        """Files that are gone (or now ignored): cancel their jobs, drop their rows."""
        report = report if report is not None else ScanReport()
        rows = await self.index.get_many(paths)
        for path in paths:
            row = rows.get(path)
            if row is not None:
                report.actions += await self.sync.cancel(path, row.jobs, f"{reason}: {path}")
            report.removed.append((path, reason))
        await self.index.remove(paths)
        return report

    async def explain(self, path: str) -> Decision:
        """The decision for one file with every reason, without queueing or saving anything."""
        rules = self.config.rules
        root = self.root_of(path)
        lead = [] if root else ["outside the library folders (LIBRARY_PATHS): scans and the watcher do not see it"]
        screening = screen(path, root, rules)
        if not screening.passed:
            return Decision(False, [*lead, *screening.reasons])
        candidate = await asyncio.to_thread(self._candidate, path, root or os.path.dirname(path))
        if candidate is None:
            return Decision(False, [*lead, await asyncio.to_thread(_not_a_media_file, path)])
        probe: MediaInfo | ProbeError | None = self._cached_probe(candidate, await self.index.get(path))
        lead.append("probe result from the media index (file unchanged)" if probe else "probed now")
        if probe is None:
            probe = await self.prober.probe(path)
        sidecars = match_sidecars(
            path,
            candidate.subtitles_here,
            candidate.subtitle_folders,
            marker=rules.subtitle_marker,
            other_media=candidate.media_here,
        )
        decision = await self._decide(candidate, probe, sidecars, (await self._written([path])).get(path, []))
        return dataclasses.replace(decision, reasons=[*lead, *decision.reasons])

    def _candidate(self, path: str, root: str | None) -> Candidate | None:
        try:
            info = os.stat(path)
        except OSError:
            return None
        if root is None or not os.path.isfile(path):
            return None
        here, folders = _subtitle_listing(os.path.dirname(path))
        names = [
            name
            for name in [*here, *(f"{sub}/{n}" for sub, names in folders.items() for n in names)]
            if _stem_of(path) in candidate_stems(name.rsplit("/", 1)[-1])
        ]
        context = sidecar_context(self.context_base, names)
        media = self._media_names(os.path.dirname(path))
        return Candidate(
            path, root, info.st_size, info.st_mtime, info.st_mtime_ns, context, here, folders, "new", media_here=media
        )

    def _media_names(self, folder: str) -> list[str]:
        try:
            with os.scandir(folder) as entries:
                return [e.name for e in entries if e.name[e.name.rfind(".") :].lower() in self._media_extensions]
        except OSError:
            return []

    # --- deciding and queueing -------------------------------------------------------

    async def _process(self, candidates: list[Candidate], report: ScanReport, *, source: Source, dry_run: bool) -> None:
        """Decide (probing where needed), queue and save, a batch at a time, in priority order."""
        if not candidates:
            return
        order = self.config.priority_order
        candidates.sort(key=lambda c: sort_key(order, path=c.path, size=c.size, mtime=c.mtime))
        written = await self._written([c.path for c in candidates])
        for start in range(0, len(candidates), _BATCH):
            batch = candidates[start : start + _BATCH]
            previous = await self.index.get_many([c.moved_from or c.path for c in batch])
            evaluations = await asyncio.gather(*(self._evaluate(c, previous, written) for c in batch))
            for evaluation in evaluations:
                candidate, decision = evaluation.candidate, evaluation.decision
                report.decided.append((candidate.path, decision))
                log.debug(
                    "file_decided",
                    path=candidate.path,
                    change=candidate.change,
                    queue=decision.queue,
                    reason=decision.summary,
                )
            if not dry_run:
                await self._commit(evaluations, previous, report, source)

    async def _commit(
        self, evaluations: Sequence[_Evaluation], previous: Mapping[str, IndexRow], report: ScanReport, source: Source
    ) -> None:
        """Queue what the batch's decisions say, then save them (a failure before leaves them for next scan)."""
        rows = []
        queued = False
        for evaluation in evaluations:  # in priority order: equal priorities run in queueing order
            candidate = evaluation.candidate
            old = previous.get(candidate.moved_from or candidate.path)
            actions = await self._apply(candidate, evaluation.decision, old, source, report)
            queued |= any(action.action == "queued" for action in actions)
            report.actions += actions
            rows.append(_index_row(evaluation, old))
        moved_from = [e.candidate.moved_from for e in evaluations if e.candidate.moved_from]
        await self.index.save(rows, remove=moved_from)
        if queued:
            self.wake()

    async def _apply(
        self, candidate: Candidate, decision: Decision, old: IndexRow | None, source: Source, report: ScanReport
    ) -> list[QueueAction]:
        inherited = {}
        previous = old.jobs if old is not None else []
        if candidate.moved_from is not None:
            log.info("file_moved", old=candidate.moved_from, new=candidate.path)
            report.moved.append((candidate.moved_from, candidate.path))
            inherited = await self.sync.take_over(candidate.moved_from, candidate.path, previous)
            previous = []
        state = FileState(candidate.size, candidate.mtime)
        return await self.sync.apply(
            candidate.path, state, decision, previous=previous, source=source, inherited=inherited
        )

    async def _evaluate(
        self, candidate: Candidate, previous: Mapping[str, IndexRow], written: Mapping[str, list[_Ours]]
    ) -> _Evaluation:
        rules = self.config.rules
        screening = screen(candidate.path, candidate.root, rules)
        if not screening.passed:
            return _Evaluation(candidate, screening.decision(), None, None)
        cached = self._cached_probe(candidate, previous.get(candidate.moved_from or candidate.path))
        probe = cached if cached is not None else await self.prober.probe(candidate.path)
        sidecars = match_sidecars(
            candidate.path,
            candidate.subtitles_here,
            candidate.subtitle_folders,
            marker=rules.subtitle_marker,
            other_media=candidate.media_here,
        )
        decision = await self._decide(candidate, probe, sidecars, written.get(candidate.path, []))
        if isinstance(probe, ProbeError):
            return _Evaluation(candidate, decision, None, probe.problem)
        return _Evaluation(candidate, decision, probe.to_dict(), None)

    async def _decide(
        self, candidate: Candidate, probe: MediaInfo | ProbeError, sidecars: Sequence[Sidecar], ours: Sequence[_Ours]
    ) -> Decision:
        """The rules' decision, with what only the scanner knows: stale subtitles of ours, files still copied."""
        # A subtitle we made from an earlier version of the file (grown, replaced) does not cover it.
        made_now = (candidate.size, candidate.mtime_ns)
        stale = [o.subtitle.path for o in ours if o.made_from is not None and o.made_from != made_now]
        fresh = [o.subtitle for o in ours if o.subtitle.path not in stale]
        kept = [s for s in sidecars if s.path not in stale]
        decision = decide(candidate.path, candidate.root, self.config.rules, probe, kept, fresh)
        if stale:
            note = f"not counted: {', '.join(os.path.basename(p) for p in stale)}, written by Transcriptarr from an "
            note += "earlier version of this file (its size or modification time changed since)"
            decision = dataclasses.replace(decision, reasons=[*decision.reasons[:-1], note, *decision.reasons[-1:]])
        if decision.queue and isinstance(probe, MediaInfo):
            why = await asyncio.to_thread(incomplete_media, probe, candidate.path)
            if why is not None:
                # Not queued: decided again once it changes (watcher) or at the next scan (retry).
                wait = f"not decided yet: it {why}; it is looked at again once it is complete"
                reasons = [*decision.reasons[:-1], wait]  # in place of "queue: n jobs"
                return dataclasses.replace(decision, queue=False, jobs=[], reasons=reasons, retry=True)
        return decision

    @staticmethod
    def _cached_probe(candidate: Candidate, old: IndexRow | None) -> MediaInfo | None:
        if old is None or old.probe is None or (old.size, old.mtime_ns) != (candidate.size, candidate.mtime_ns):
            return None
        try:
            return dataclasses.replace(MediaInfo.from_dict(old.probe), path=candidate.path)
        except ValueError:
            return None  # written by an older version: probe again

    async def _written(self, paths: Sequence[str]) -> dict[str, list[_Ours]]:
        """Subtitles the service wrote for these media files and that still exist."""
        found: dict[str, list[_Ours]] = {}
        for written in await self.written.written_for(paths):
            if await asyncio.to_thread(os.path.exists, written.path):
                ours = _Ours(WrittenSubtitle(written.path, written.language), written.made_from)
                found.setdefault(written.media_path, []).append(ours)
        return found

    async def _forget(self, gone: Sequence[str], walked: WalkReport, report: ScanReport, *, dry_run: bool) -> None:
        ignored = [folder.rstrip(os.sep) + os.sep for folder in walked.ignored]
        by_reason: dict[str, list[str]] = {}
        for path in gone:
            folder = next((f for f in ignored if path.startswith(f)), None)
            reason = f"folder {folder.rstrip(os.sep)} holds {IGNORE_MARKER}" if folder else "file deleted"
            by_reason.setdefault(reason, []).append(path)
        for reason, paths in by_reason.items():
            if dry_run:
                report.removed += [(path, reason) for path in paths]
            else:
                await self.forget(paths, reason, report)


def _index_row(evaluation: _Evaluation, old: IndexRow | None) -> IndexRow:
    candidate, decision = evaluation.candidate, evaluation.decision
    return IndexRow(
        path=candidate.path,
        size=candidate.size,
        mtime_ns=candidate.mtime_ns,
        # An empty context never matches: a decision that may change is taken again next scan.
        context="" if decision.retry else candidate.context,
        queued=decision.queue,
        reasons=decision.reasons,
        jobs=decision.jobs,
        probe=evaluation.probe,
        probe_error=evaluation.probe_error,
        first_seen_at=old.first_seen_at if old is not None else utcnow(),
        decided_at=utcnow(),
    )


def _pair_moves(candidates: list[Candidate], gone: Mapping[str, Known], known: Mapping[str, Known]) -> None:
    """A new file with the size and mtime of a vanished one is that file, moved (same name preferred)."""
    by_identity: dict[tuple[int, int], list[str]] = {}
    for path, old in gone.items():
        by_identity.setdefault((old.size, old.mtime_ns), []).append(path)
    for candidate in candidates:
        if candidate.path in known:
            continue
        olds = by_identity.get((candidate.size, candidate.mtime_ns))
        if not olds:
            continue
        name = os.path.basename(candidate.path)
        same_name = [p for p in olds if os.path.basename(p) == name]
        if same_name or len(olds) == 1:
            previous = (same_name or olds)[0]
            olds.remove(previous)
            candidate.moved_from, candidate.change = previous, "moved"


def _subtitle_names(folder: Folder | None) -> list[str]:
    return [entry.name for entry in folder.files if subtitle_extension(entry.name)] if folder else []


def _names_by_stem(here: Sequence[str], subfolders: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    by_stem: dict[str, list[str]] = {}
    for name in here:
        for stem in candidate_stems(name):
            by_stem.setdefault(stem, []).append(name)
    for sub, names in subfolders.items():
        for name in names:
            for stem in candidate_stems(name):
                by_stem.setdefault(stem, []).append(f"{sub}/{name}")
    return by_stem


def _subtitle_listing(folder: str) -> tuple[list[str], dict[str, list[str]]]:
    here: list[str] = []
    subfolders: dict[str, list[str]] = {}
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.lower() in SUBTITLE_FOLDERS and entry.is_dir():
                    subfolders[entry.name] = _subtitle_names(_folder(entry.path))
                elif subtitle_extension(entry.name):
                    here.append(entry.name)
    except OSError:
        pass
    return here, subfolders


def _folder(path: str) -> Folder | None:
    try:
        with os.scandir(path) as entries:
            return Folder(path, [e for e in entries if e.is_file()], [])
    except OSError:
        return None


def _not_a_media_file(path: str) -> str:
    """Why there is no file to decide about at `path`, for `explain`."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "skipped: a broken symlink" if os.path.islink(path) else "skipped: the file does not exist"
    except OSError as exc:
        return f"skipped: it cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(info.st_mode):
        return "skipped: a folder, not a media file"
    if not stat.S_ISREG(info.st_mode):
        return "skipped: not a regular file (a named pipe, socket or device)"
    return "skipped: it vanished or cannot be read"


def _stem_of(path: str) -> str:
    name = os.path.basename(path)
    return name[: name.rfind(".")].lower() if "." in name else name.lower()
