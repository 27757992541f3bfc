"""Pull Bazarr's wanted lists and queue the subtitles Whisper can make, so Bazarr users need not lower their
minimum score to let the Whisper provider through.

Every BAZARR_SYNC_MINUTES: read the wanted episodes and movies (paged), look up their files, map the paths
(PATH_MAPPINGS), and queue a job for each wanted language the engine can honestly produce. After the job
wrote the subtitle, BazarrNotify (bazarr_followup.py) makes Bazarr see it.

What counts as producible (docs for users in `plan_wanted`):
- the wanted language is the audio's language (transcribe), or English while the audio is another
  language (translate); unknown audio is queued and the worker detects the language (it skips the job,
  saying why, when the audio turns out to be another language);
- forced subtitles are not made: they carry only the foreign-language parts, Whisper writes all speech;
- hearing-impaired ones are not made: Whisper writes the dialogue, not sound descriptions, and
  Bazarr does not count a plain subtitle for a wanted HI one;
- Bazarr's variants: `pb` (Brazilian Portuguese) and `ea` (Latin American Spanish) only from audio
  Bazarr knows to be that variant (a transcript follows the spoken variant), and delivered by upload
  whatever BAZARR_AFTER_WRITE says, because Bazarr only counts them under its own regional file
  names (`pt-BR`); `zt` (Traditional Chinese) never: Whisper mostly writes Simplified characters.

Nothing is queued twice: a live job for the same work, a finished one for the unchanged file, a job
that failed or was cancelled for the unchanged file (retry it by hand), or the subtitle file already
next to the video all count as handled. So a Bazarr that never notices the file (a failed scan-disk,
SUBTITLE_MARKER) costs one transcription, not one per pull.
"""

# Paths are plain str here, like the library's (its job keys use the same strings): os.path.
# ruff: noqa: PTH116, PTH117

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog

from transcriptarr.db.models import ACTIVE_STATES, Job, JobState, Source, Task
from transcriptarr.integrations.bazarr_api import (
    DEFAULT_BATCH,
    DEFAULT_PAGE,
    UPLOAD_ONLY,
    VARIANTS,
    BazarrClient,
    BazarrError,
    Kind,
    MediaItem,
    WantedItem,
    WantedLanguage,
)
from transcriptarr.library.rules import language_name
from transcriptarr.policy.confinement import OutsideLibrary, inside_library
from transcriptarr.policy.languages import whisper_code
from transcriptarr.policy.naming import SubtitleNaming, subtitle_path
from transcriptarr.policy.paths import PathMapper
from transcriptarr.policy.plans import plan_task
from transcriptarr.queue.jobqueue import JobQueue, NewJob
from transcriptarr.queue.keys import SOURCE_PRIORITY, media_key

if TYPE_CHECKING:
    from transcriptarr.settings import Settings

log = structlog.get_logger(__name__)

# Wanted-list jobs rank below webhooks (300) and a person's request (manual, 250), above rescans
# (100-199) and with the watcher's new files (200-299): a Bazarr user wants them, but no HTTP request
# waits on them, unlike the provider requests that Source.BAZARR's own 400 is for.
WANTED_PRIORITY = (SOURCE_PRIORITY[Source.MANUAL] + SOURCE_PRIORITY[Source.WATCH]) // 2

_FIRST_PULL_SECONDS = 15.0  # let the service start first
_MAX_REASONS_LOGGED = 10


@dataclass(frozen=True)
class Wish:
    """What to queue for one wanted language."""

    target: str  # Whisper code of the subtitle's language
    task: Task
    source: str | None  # the audio's language as Whisper code; None: the worker detects it
    how: str  # for the job's details and the logs


def refusal(wanted: WantedLanguage) -> str | None:
    """Why this wanted language cannot be made whatever the audio is, or None."""
    if wanted.forced:
        return (
            f"forced {wanted.name} subtitles wanted: they carry only the foreign-language parts, "
            "Whisper writes all speech"
        )
    if wanted.hi:
        return (
            f"hearing-impaired {wanted.name} subtitles wanted: Whisper writes the dialogue, not sound "
            "descriptions, and Bazarr does not count a plain subtitle for them"
        )
    if wanted.code2 == "zt":
        return "Traditional Chinese (zt) wanted: Whisper mostly writes Simplified characters; not claimed"
    if _whisper(wanted.code2) is None:
        return f"{wanted.name} ({wanted.code2}) wanted: Whisper does not know this language"
    return None


def plan_wanted(wanted: WantedLanguage, audio: Sequence[str], model: str | None = None) -> Wish | str:
    """How to make `wanted` from audio in Bazarr's `audio` codes (empty: unknown), or why not."""
    refused = refusal(wanted)
    if refused is not None:
        return refused
    code = wanted.code2
    target = _whisper(code)
    assert target is not None  # refusal() said so
    if code in UPLOAD_ONLY:
        variant = VARIANTS[code][1]
        if code not in audio:
            heard = ", ".join(audio) if audio else "unknown"
            return (
                f"{variant} ({code}) wanted but the audio is {heard}: a transcript follows the spoken variant, "
                f"so Transcriptarr makes {code} only from audio Bazarr knows to be {variant}"
            )
        return Wish(target, Task.TRANSCRIBE, target, f"transcribe the {variant} audio")
    spoken = [language for language in map(_whisper, audio) if language is not None]
    if not spoken:
        return Wish(target, Task.TRANSCRIBE, None, "the worker detects the audio language (unknown to Bazarr)")
    if target in spoken:
        return Wish(target, Task.TRANSCRIBE, target, f"transcribe the {language_name(target)} audio")
    plan = plan_task(spoken[0], target, model)  # None: any model; else refused when it cannot translate
    if isinstance(plan, str):
        return plan
    return Wish(target, plan.task, spoken[0], f"translate the {language_name(spoken[0])} audio into English")


def _whisper(bazarr_code: str) -> str | None:
    """A Bazarr language code (its variants included) as Whisper's code."""
    return whisper_code(VARIANTS[bazarr_code][0] if bazarr_code in VARIANTS else bazarr_code)


# Why a wanted language was not queued: each is a count of SyncReport.
Category = Literal["unproducible", "unresolved", "already_queued", "already_done", "failed_before"]


@dataclass(frozen=True)
class Skipped:
    kind: Kind
    item_id: int
    title: str
    language: str
    category: Category
    reason: str


@dataclass
class SyncReport:
    """What one pull found and did; `wanted` counts (item, language) pairs."""

    bazarr_version: str = "unknown"
    wanted: int = 0
    queued: int = 0
    already_queued: int = 0
    already_done: int = 0
    failed_before: int = 0
    unproducible: int = 0
    unresolved: int = 0
    jobs: list[int] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)  # why unproducible, with how often

    def skip(self, item: WantedItem, language: WantedLanguage, category: Category, reason: str) -> None:
        setattr(self, category, getattr(self, category) + 1)
        self.skipped.append(Skipped(item.kind, item.item_id, item.title, language.code2, category, reason))
        if category == "unproducible":
            self.reasons[reason] += 1
        log.debug("bazarr_wanted_skipped", kind=item.kind, title=item.title, language=language.code2, reason=reason)

    def summary(self) -> dict[str, Any]:
        unresolved = next((s.reason for s in self.skipped if s.category == "unresolved"), None)
        return {
            "bazarr_version": self.bazarr_version,
            "wanted": self.wanted,
            "queued": self.queued,
            "already_queued": self.already_queued,
            "already_done": self.already_done,
            "failed_before": self.failed_before,
            "unproducible": self.unproducible,
            "unresolved": self.unresolved,
            "unproducible_reasons": dict(self.reasons.most_common(_MAX_REASONS_LOGGED)),
            **({"unresolved_example": unresolved} if unresolved else {}),
        }


@dataclass(frozen=True)
class SyncConfig:
    url: str
    api_key: str
    interval_minutes: float = 30.0
    timeout_seconds: float = 300.0
    after_write: str = "scan-disk"
    library_paths: tuple[Path, ...] = ()
    follow_symlinks: bool = True  # LIBRARY_FOLLOW_SYMLINKS: the scan's rule for a symlink out of the library
    model: str = ""  # WHISPER_MODEL: what it can make (an English-only model cannot translate)
    quality: str = "balanced"
    naming: SubtitleNaming = field(default_factory=SubtitleNaming)  # the worker's, to see what it will write
    first_pull_seconds: float = _FIRST_PULL_SECONDS
    page_size: int = DEFAULT_PAGE
    batch_size: int = DEFAULT_BATCH

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> SyncConfig:
        if not settings.bazarr_url or settings.bazarr_api_key is None:
            raise ValueError("the Bazarr sync needs BAZARR_URL and BAZARR_API_KEY")
        values: dict[str, Any] = {
            "url": settings.bazarr_url,
            "api_key": settings.bazarr_api_key.get_secret_value(),
            "interval_minutes": settings.bazarr_sync_minutes,
            "timeout_seconds": settings.bazarr_timeout_seconds,
            "after_write": settings.bazarr_after_write,
            "library_paths": tuple(settings.library_paths),
            "follow_symlinks": settings.library_follow_symlinks,
            "model": settings.whisper_model,
            "quality": settings.quality,
            "naming": SubtitleNaming.from_settings(settings),
        }
        values.update(overrides)
        return cls(**values)


class BazarrSync:
    def __init__(
        self,
        queue: JobQueue,
        paths: PathMapper,
        config: SyncConfig,
        *,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.queue = queue
        self.paths = paths
        self.config = config
        self.wake = wake

    def client(self) -> BazarrClient:
        config = self.config
        return BazarrClient(
            config.url,
            config.api_key,
            timeout=config.timeout_seconds,
            page_size=config.page_size,
            batch_size=config.batch_size,
        )

    # --- the loop ---
    async def run(self, stop: asyncio.Event) -> None:
        """Pull soon after start, then every BAZARR_SYNC_MINUTES, until `stop`; a failed pull waits for the next."""
        log.info(
            "bazarr_sync_started",
            url=self.config.url,
            every_minutes=self.config.interval_minutes,
            after_write=self.config.after_write,
        )
        delay = self.config.first_pull_seconds
        while not await _stopped_within(stop, delay):
            await self._pull_until(stop)
            delay = self.config.interval_minutes * 60

    async def _pull_until(self, stop: asyncio.Event) -> None:
        """One pull that never raises; cut short when the service stops."""
        pull = asyncio.create_task(self.pull_once(), name="bazarr-pull")
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({pull, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not pull.done():
                pull.cancel()
            with contextlib.suppress(BaseException):
                await pull
        if pull.cancelled():
            log.info("bazarr_sync_interrupted", reason="the service is stopping")
            return
        error = pull.exception()
        if error is None:
            return
        next_try = round(self.config.interval_minutes, 1)
        if isinstance(error, BazarrError):
            log.error("bazarr_sync_failed", error=str(error), next_try_minutes=next_try)
        else:
            log.error(
                "bazarr_sync_failed",
                error=f"{type(error).__name__}: {error}",
                next_try_minutes=next_try,
                exc_info=error,
            )

    # --- one pull ---
    async def pull_once(self) -> SyncReport:
        """Read both wanted lists and queue what can be made; raises BazarrError when Bazarr cannot be used."""
        report = SyncReport()
        async with self.client() as bazarr:
            report.bazarr_version = await bazarr.check()
            episodes = await bazarr.wanted_episodes()
            await self._handle(bazarr, "episode", episodes, report)
            movies = await bazarr.wanted_movies()
            await self._handle(bazarr, "movie", movies, report)
        if report.queued:
            self.wake()
        log.info("bazarr_sync_done", **report.summary())
        return report

    async def _handle(self, bazarr: BazarrClient, kind: Kind, wanted: list[WantedItem], report: SyncReport) -> None:
        # Only look up items with something left to make once the audio is known.
        ids = [item.item_id for item in wanted if any(refusal(language) is None for language in item.languages)]
        found = await (bazarr.episodes(ids) if kind == "episode" else bazarr.movies(ids))
        media = {item.item_id: item for item in found}
        for item in wanted:
            for language in item.languages:
                report.wanted += 1
                await self._one(item, language, media.get(item.item_id), report)

    async def _one(
        self, item: WantedItem, language: WantedLanguage, media: MediaItem | None, report: SyncReport
    ) -> None:
        refused = refusal(language)
        if refused is not None:
            report.skip(item, language, "unproducible", refused)
            return
        if media is None or not media.path:
            report.skip(item, language, "unresolved", f"Bazarr names no video file for {item.kind} {item.item_id}")
            return
        wish = plan_wanted(language, media.audio_languages, self.config.model or None)
        if isinstance(wish, str):
            report.skip(item, language, "unproducible", wish)
            return
        if language.code2 in UPLOAD_ONLY and self.config.after_write == "none":
            reason = f"{language.code2} reaches Bazarr only by upload, and BAZARR_AFTER_WRITE is none"
            report.skip(item, language, "unproducible", reason)
            return
        local = await asyncio.to_thread(self._local_file, media.path)
        if isinstance(local, str):
            report.skip(item, language, "unresolved", local)
            return
        path, info = local
        await self._queue(item, language, media, wish, path, info, report)

    def _local_file(self, bazarr_path: str) -> tuple[str, os.stat_result] | str:
        """The file as this node sees it, with its stat; else why it cannot be used."""
        mapped = self.paths.map(bazarr_path)
        if not os.path.isabs(mapped):  # e.g. Bazarr on Windows, and no mapping for its drive
            return f"Bazarr's path {bazarr_path} is no path on this machine; add a PATH_MAPPINGS entry for it"
        local = os.path.normpath(mapped)
        seen_as = f"{local} (Bazarr: {bazarr_path})" if local != bazarr_path else local
        if self.config.library_paths:
            try:
                inside_library(mapped, self.config.library_paths, follow_symlinks=self.config.follow_symlinks)
            except OutsideLibrary:
                return f"{seen_as} is outside LIBRARY_PATHS; add its folder there or check PATH_MAPPINGS"
            except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop and the like
                return f"cannot resolve {seen_as}: {exc}"
        try:
            info = os.stat(local)
        except OSError:
            return f"{seen_as} not found here; check PATH_MAPPINGS"
        if not stat.S_ISREG(info.st_mode):
            return f"{seen_as} is not a file"
        return local, info

    async def _queue(
        self,
        item: WantedItem,
        language: WantedLanguage,
        media: MediaItem,
        wish: Wish,
        path: str,
        info: os.stat_result,
        report: SyncReport,
    ) -> None:
        key = media_key(path, wish.task, wish.target)
        last = await self.queue.latest(key)
        if last is not None and last.state in ACTIVE_STATES:
            report.skip(item, language, "already_queued", f"already {last.state} as job {last.id}")
            return
        if last is not None and last.state in (JobState.FAILED, JobState.CANCELLED) and _same_file(last, info):
            why = (
                f"job {last.id} {last.state} for this file ({last.error}); to try again: transcriptarr retry {last.id}"
            )
            report.skip(item, language, "failed_before", why)
            return
        if wish.task == Task.TRANSCRIBE:
            # The library queues "transcribe in the audio's own language" under another key: the same work.
            library_job = await self.queue.find_live(media_key(path, Task.TRANSCRIBE, None))
            if library_job is not None:
                report.skip(item, language, "already_queued", f"already {library_job.state} as job {library_job.id}")
                return
        subtitle = self._sidecar(path, wish.target)
        if subtitle is not None and await asyncio.to_thread(os.path.lexists, subtitle):
            report.skip(item, language, "already_done", f"{subtitle} exists; Bazarr sees it at its next disk scan")
            return
        result = await self.queue.enqueue(
            NewJob(
                source=Source.BAZARR,
                task=wish.task,
                media_path=path,
                media_size=info.st_size,
                media_mtime=info.st_mtime,
                source_language=wish.source,
                target_language=wish.target,
                priority=WANTED_PRIORITY,
                quality=self.config.quality,
                details={
                    "found_by": "bazarr",
                    "reason": f"Bazarr wants {language.name} subtitles; {wish.how}",
                    "bazarr": _bazarr_details(item, language, media),
                },
            )
        )
        job = result.job
        if not result.created:
            category: Category = "already_done" if job.state == JobState.COMPLETED else "already_queued"
            report.skip(item, language, category, result.reason)
            return
        report.queued += 1
        report.jobs.append(job.id)
        log.info(
            "bazarr_job_queued",
            job_id=job.id,
            path=path,
            kind=item.kind,
            title=item.title,
            language=language.code2,
            task=str(wish.task),
            how=wish.how,
            priority=job.priority,
        )

    def _sidecar(self, path: str, language: str) -> str | None:
        """Where the worker will write this subtitle (the same naming as the job runner's)."""
        try:
            return str(subtitle_path(Path(path), language, self.config.naming))
        except ValueError:
            return None


def _same_file(job: Job, info: os.stat_result) -> bool:
    return job.media_size == info.st_size and job.media_mtime == info.st_mtime


def _bazarr_details(item: WantedItem, language: WantedLanguage, media: MediaItem) -> dict[str, Any]:
    """What BazarrNotify needs to tell Bazarr about the written subtitle."""
    ids: dict[str, Any]
    if item.kind == "episode":
        ids = {"seriesid": item.series_id if item.series_id is not None else media.series_id, "episodeid": item.item_id}
    else:
        ids = {"radarrid": item.item_id}
    return {
        "kind": item.kind,
        **ids,
        "language": language.code2,
        "forced": language.forced,
        "hi": language.hi,
        "title": item.title,
    }


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))
    return stop.is_set()


def bazarr_sync_from_settings(
    settings: Settings,
    queue: JobQueue,
    paths: PathMapper,
    *,
    wake: Callable[[], None] = lambda: None,
    **overrides: Any,
) -> BazarrSync | None:
    """The wanted-list pull the configuration asks for, or None (saying why when it was half configured).

    `wake` tells this node's workers that jobs were queued."""
    if not settings.bazarr_url:
        return None
    reason = None
    if settings.bazarr_api_key is None or not settings.bazarr_api_key.get_secret_value():
        reason = "BAZARR_API_KEY is not set (Bazarr: Settings > General > Security > API Key)"
    elif settings.bazarr_sync_minutes <= 0:
        reason = "BAZARR_SYNC_MINUTES is 0"
    elif not settings.discovery_enabled:
        reason = "DISCOVERY_ENABLED is false on this node"
    if reason is not None:
        log.info("bazarr_sync_disabled", reason=reason)
        return None
    if settings.subtitle_marker and settings.bazarr_after_write == "scan-disk":
        log.warning(
            "bazarr_marker_hides_subtitles",
            marker=settings.subtitle_marker,
            reason="Bazarr ignores files named like Movie.en.MARKER.srt, so a disk scan does not count them",
            fix="set BAZARR_AFTER_WRITE=upload or unset SUBTITLE_MARKER",
        )
    return BazarrSync(queue, paths, SyncConfig.from_settings(settings, **overrides), wake=wake)
