"""What the library part of the service can be told: folders, rules, watching and priorities.

`LibraryConfig.from_settings` reads the service settings (LIBRARY_*, TARGET_LANGUAGES, ...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from transcriptarr.policy.languages import normalize_language
from transcriptarr.policy.media_kinds import DEFAULT_AUDIO_EXTENSIONS, DEFAULT_VIDEO_EXTENSIONS

if TYPE_CHECKING:
    from transcriptarr.settings import Settings

PriorityOrder = Literal["newest", "oldest", "smallest", "path"]
PRIORITY_ORDERS: tuple[PriorityOrder, ...] = ("newest", "oldest", "smallest", "path")


# Matched, case-insensitively, against "/" + the path relative to its library folder.
# Plex/Jellyfin/Emby extras folders and name suffixes, samples, NAS system folders.
DEFAULT_IGNORE_GLOBS: tuple[str, ...] = (
    "*/sample/*",
    "*/samples/*",
    "*[-._ ]sample.*",
    "*/sample.*",
    "*/extras/*",
    "*/featurettes/*",
    "*/trailers/*",
    "*/behind the scenes/*",
    "*/deleted scenes/*",
    "*/interviews/*",
    "*/scenes/*",
    "*/shorts/*",
    "*/other/*",
    "*-trailer.*",
    "*-featurette.*",
    "*-behindthescenes.*",
    "*-deleted.*",
    "*-interview.*",
    "*-scene.*",
    "*-short.*",
    "*-other.*",
    "*/@eadir/*",
    "*/#recycle/*",
    "*/$recycle.bin/*",
    "*/lost+found/*",
)


@dataclass(frozen=True)
class RulesConfig:
    """Everything the decision depends on besides the file itself (see docs/decisions.md)."""

    target_languages: tuple[str, ...] = ("original",)
    video_extensions: frozenset[str] = DEFAULT_VIDEO_EXTENSIONS
    audio_extensions: frozenset[str] = DEFAULT_AUDIO_EXTENSIONS
    ignore_globs: tuple[str, ...] = DEFAULT_IGNORE_GLOBS
    min_duration_seconds: float = 60.0
    preferred_audio_languages: tuple[str, ...] = ()
    # SubGen's LIMIT_TO_PREFERRED_AUDIO_LANGUAGE: no track in a preferred language, no job.
    limit_to_preferred_audio_languages: bool = False
    force_language: str | None = None
    skip_audio_languages: tuple[str, ...] = ()
    skip_unknown_audio_language: bool = False
    count_forced_subtitles: bool = False
    count_image_subtitles: bool = True
    subtitle_marker: str | None = None
    # AUDIO_LYRICS: an audio file gets one .lrc (at most one job); false: a subtitle per wanted language.
    audio_lyrics: bool = True
    # WHISPER_MODEL: some models cannot translate (transcriptarr/policy/capabilities.py); "" = assume it can.
    whisper_model: str = ""

    def fingerprint(self) -> str:
        """Changes when any rule setting changes, so that a rescan decides every file again."""
        parts = []
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, frozenset):
                value = sorted(value)
            parts.append(f"{item.name}={value!r}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class WatchedPath:
    """One library folder for the watcher: inotify, or polling every `poll_interval` seconds."""

    path: Path
    polling: bool = False
    poll_interval: float = 30.0


@dataclass(frozen=True)
class LibraryConfig:
    paths: tuple[Path, ...] = ()
    rules: RulesConfig = field(default_factory=RulesConfig)
    scan_on_startup: bool = True
    auto_scan: bool = True
    scan_interval_minutes: float = 360.0
    watch: bool = True
    polling: bool = False
    # Folder -> its own poll interval (None: `poll_interval`); these are polled even without `polling`.
    polling_paths: tuple[tuple[Path, float | None], ...] = ()
    poll_interval: float = 30.0
    stable_seconds: float = 30.0
    probe_concurrency: int = 4
    priority_order: PriorityOrder = "newest"
    follow_symlinks: bool = True
    quality: str = "balanced"

    def watched_paths(self) -> list[WatchedPath]:
        per_path = dict(self.polling_paths)
        watched = []
        for path in self.paths:
            if path in per_path:
                watched.append(WatchedPath(path, True, per_path[path] or self.poll_interval))
            else:
                watched.append(WatchedPath(path, self.polling, self.poll_interval))
        return watched

    @classmethod
    def from_settings(cls, settings: Settings) -> LibraryConfig:
        rules = RulesConfig(
            target_languages=tuple(settings.target_languages) or ("original",),
            video_extensions=parse_extensions(settings.library_video_extensions, DEFAULT_VIDEO_EXTENSIONS),
            audio_extensions=parse_extensions(settings.library_audio_extensions, DEFAULT_AUDIO_EXTENSIONS),
            ignore_globs=tuple(split_list(settings.library_ignore_globs, "|") or DEFAULT_IGNORE_GLOBS),
            min_duration_seconds=float(settings.library_min_duration_seconds),
            preferred_audio_languages=tuple(settings.preferred_audio_languages),
            limit_to_preferred_audio_languages=settings.limit_to_preferred_audio_languages,
            force_language=settings.force_language,
            skip_audio_languages=tuple(split_list(settings.skip_audio_languages, ",")),
            skip_unknown_audio_language=settings.skip_unknown_audio_language,
            count_forced_subtitles=settings.library_count_forced_subtitles,
            count_image_subtitles=settings.library_count_image_subtitles,
            subtitle_marker=settings.subtitle_marker,
            audio_lyrics=settings.audio_lyrics,
            whisper_model=settings.whisper_model,
        )
        return cls(
            paths=tuple(settings.library_paths),
            rules=rules,
            scan_on_startup=settings.library_scan_on_startup,
            auto_scan=settings.auto_scan_enabled,
            scan_interval_minutes=float(settings.scan_interval_minutes),
            watch=settings.library_watch,
            polling=settings.library_polling,
            polling_paths=parse_polling_paths(settings.library_polling_paths),
            poll_interval=float(settings.library_poll_interval_seconds),
            stable_seconds=float(settings.library_stable_seconds),
            probe_concurrency=settings.library_probe_concurrency,
            priority_order=parse_priority_order(settings.library_priority_order),
            follow_symlinks=settings.library_follow_symlinks,
            quality=str(settings.quality),
        )


def split_list(value: str | Iterable[str] | None, sep: str) -> list[str]:
    if value is None:
        return []
    parts = value.split(sep) if isinstance(value, str) else list(value)
    return [str(part).strip() for part in parts if str(part).strip()]


def parse_extensions(value: str | Iterable[str] | None, default: frozenset[str]) -> frozenset[str]:
    """ "mkv, .MP4" -> {".mkv", ".mp4"}; None keeps the default, an empty text means none."""
    if value is None:
        return default
    return frozenset("." + part.lower().lstrip(".") for part in split_list(value, ","))


def parse_polling_paths(value: str | Iterable[str] | None) -> tuple[tuple[Path, float | None], ...]:
    """ "/mnt/nas|/mnt/smb=120": folders to poll, each with an optional interval in seconds."""
    parsed = []
    for part in split_list(value, "|"):
        folder, _, seconds = part.rpartition("=")
        interval: float | None = None
        if folder and _is_positive_number(seconds):
            interval = float(seconds)
        else:
            folder = part
        parsed.append((Path(folder).expanduser(), interval))
    return tuple(parsed)


def parse_priority_order(value: str) -> PriorityOrder:
    for order in PRIORITY_ORDERS:
        if order == value.strip().lower():
            return order
    raise ValueError(f"unknown priority order {value!r}; use one of {', '.join(PRIORITY_ORDERS)}")


def language_list(values: Sequence[str]) -> list[str]:
    """Languages as two-letter codes where possible; unknown names are kept as given."""
    return [normalize_language(value) or value for value in values]


def _is_positive_number(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False
