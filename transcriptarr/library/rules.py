"""The decision: does a media file need subtitles from us, and which jobs would make them?

One ordered rule set (docs/decisions.md lists it with examples). Rules 1-6 read the
path only, so the scanner never runs ffprobe for a file they turn away; rules 7-11
need the probe result. Every rule that is checked adds a line to `reasons`, so
`transcriptarr explain` can show the whole chain, not only the last step.

 1. the name is safe to handle (no control characters, valid UTF-8)
 2. not hidden (no path part under the library starting with ".")
 3. not a download in progress (.part, .!qB, .crdownload, ...)
 4. a video or audio file, by extension
 5. no `.transcriptarr-ignore` marker in its folder or a parent within the library
 6. no ignore pattern matches (samples, extras, trailers, ...)
 7. ffprobe can read it
 8. it has an audio stream
 9. it is at least the minimum duration
10. its audio language is not one to skip (listed, or unknown when so configured), and,
    with LIMIT_TO_PREFERRED_AUDIO_LANGUAGES, some audio track is in a preferred language
11. per wanted language: not already subtitled (sidecar, embedded, written by us),
    and Whisper can make it (transcribe, or translate into English); an audio file gets
    one .lrc whatever the language (AUDIO_LYRICS; off: subtitles per language as for a video)
"""

# Paths are plain str throughout the library package (index keys, tens of thousands per scan): os.path.
# ruff: noqa: PTH110, PTH118, PTH119, PTH120, PTH122, PTH206

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePath

from babelfish import Error as BabelfishError
from babelfish import Language

from transcriptarr.library.config import RulesConfig, language_list
from transcriptarr.library.sidecars import Sidecar
from transcriptarr.media.audio import choose_audio_track
from transcriptarr.media.probe import MediaInfo, ProbeError
from transcriptarr.policy.capabilities import translation_refusal
from transcriptarr.policy.languages import normalize_language, whisper_code
from transcriptarr.policy.names import (
    IGNORE_MARKER,
    is_hidden,
    partial_download_suffix,
    unsafe_name_reason,
)
from transcriptarr.policy.naming import lyrics_path
from transcriptarr.policy.plans import Task, plan_task

JobSpec = tuple[str | None, Task]  # (target language, None: the audio's own; task)


@dataclass(frozen=True)
class Decision:
    queue: bool
    reasons: list[str]
    jobs: list[JobSpec] = field(default_factory=list)
    source_language: str | None = None
    duration: float | None = None
    # True when the same file may get another answer later (ffprobe timed out, ...):
    # such a decision is not cached, the next scan tries again.
    retry: bool = False

    @property
    def summary(self) -> str:
        """The deciding reason: the last one."""
        return self.reasons[-1] if self.reasons else ""


@dataclass(frozen=True)
class Screening:
    """The outcome of the rules that need only the path."""

    passed: bool
    reasons: list[str]
    kind: str | None = None  # "video" or "audio"

    def decision(self) -> Decision:
        return Decision(queue=False, reasons=list(self.reasons))


@dataclass(frozen=True)
class WrittenSubtitle:
    """A subtitle file the service wrote for this media file and that still exists."""

    path: str
    language: str | None


# --- rules 1-6: the path --------------------------------------------------------


def screen(path: str, root: str | None, config: RulesConfig) -> Screening:
    reasons: list[str] = []

    def stop(reason: str) -> Screening:
        return Screening(False, [*reasons, reason])

    name = os.path.basename(path)
    relative = _relative_parts(path, root)
    unsafe = next((reason for part in relative if (reason := unsafe_name_reason(part))), None)
    if unsafe:
        return stop(f"skipped: {unsafe}")
    hidden = next((part for part in relative if is_hidden(part)), None)
    if hidden:
        return stop(f"skipped: hidden ({hidden!r} starts with a dot)")
    suffix = partial_download_suffix(name)
    if suffix:
        return stop(f"skipped: a download in progress ({suffix}); it is looked at again once renamed")
    ext = os.path.splitext(name)[1].lower()
    if ext in config.video_extensions:
        kind = "video"
    elif ext in config.audio_extensions:
        kind = "audio"
    else:
        return stop(f"skipped: not a media file ({ext or 'no extension'} is not in the video or audio extensions)")
    reasons.append(f"{kind} file ({ext})")
    marker = ignore_marker_folder(path, root)
    if marker:
        return stop(f"skipped: folder {marker} holds a {IGNORE_MARKER} file")
    pattern = matching_glob("/" + "/".join(relative), config.ignore_globs)
    if pattern:
        return stop(f"skipped: matches ignore pattern {pattern!r} (LIBRARY_IGNORE_GLOBS)")
    reasons.append("not ignored (no ignore marker, no ignore pattern matches)")
    return Screening(True, reasons, kind)


def _relative_parts(path: str, root: str | None) -> list[str]:
    if root and (path.startswith(root.rstrip(os.sep) + os.sep)):
        return path[len(root.rstrip(os.sep)) + 1 :].split(os.sep)
    return [os.path.basename(path)]


def ignore_marker_folder(path: str, root: str | None) -> str | None:
    """The nearest folder from the file's up to its library folder that holds the marker."""
    folder = os.path.dirname(path)
    stop_at = root.rstrip(os.sep) if root else folder
    while True:
        if os.path.exists(os.path.join(folder, IGNORE_MARKER)):
            return folder
        if folder == stop_at or len(folder) <= len(stop_at):
            return None
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def matching_glob(relative: str, globs: Sequence[str]) -> str | None:
    if not globs:
        return None
    match = _compiled_globs(tuple(globs)).match(relative.lower())
    if match is None:
        return None
    return globs[int(match.lastgroup[1:])] if match.lastgroup else globs[0]


@lru_cache(maxsize=8)
def _compiled_globs(globs: tuple[str, ...]) -> re.Pattern[str]:
    # One regular expression for all patterns: a file is checked in one pass.
    alternatives = (f"(?P<g{i}>{fnmatch.translate(glob.lower())})" for i, glob in enumerate(globs))
    return re.compile("|".join(alternatives))


# --- rules 7-11: the probed file ----------------------------------------------


def decide(
    path: str,
    root: str | None,
    config: RulesConfig,
    probe: MediaInfo | ProbeError,
    sidecars: Sequence[Sidecar] = (),
    written: Sequence[WrittenSubtitle] = (),
) -> Decision:
    screening = screen(path, root, config)
    if not screening.passed:
        return screening.decision()
    reasons = list(screening.reasons)
    if isinstance(probe, ProbeError):
        return _unreadable(probe, reasons)
    stop = _check_streams(probe, config, reasons)
    if stop is not None:
        return stop
    duration = probe.duration
    source, audio_reason = _audio_language(probe, config)
    reasons.append(audio_reason)
    skip = _audio_skip_reason(source, config) or _preferred_tracks(probe, config, reasons)
    if skip:
        return Decision(False, [*reasons, skip], source_language=source, duration=duration)
    audio = screening.kind == "audio"
    if audio and not config.audio_lyrics:
        reasons.append("an audio file gets a subtitle per wanted language, as a video does (AUDIO_LYRICS=false)")
    jobs = _wanted_languages(source, probe, sidecars, written, config, reasons)
    if audio and config.audio_lyrics:
        jobs = _one_lyrics_file(path, jobs, sidecars, reasons)
    if jobs:
        reasons.append(f"queue: {len(jobs)} job{'s' if len(jobs) > 1 else ''}")
    else:
        reasons.append("nothing to do: every wanted language is covered or cannot be made")
    return Decision(bool(jobs), reasons, jobs, source_language=source, duration=duration)


def _unreadable(probe: ProbeError, reasons: list[str]) -> Decision:
    """Rule 7."""
    if probe.kind == "missing":
        # Gone between the listing and ffprobe: the next scan forgets it.
        return Decision(False, [*reasons, "skipped: the file vanished while it was looked at"], retry=True)
    if probe.permanent:
        return Decision(False, [*reasons, f"skipped: ffprobe cannot read it ({probe.problem})"])
    return Decision(False, [*reasons, f"not decided yet: {probe.problem}; tried again next scan"], retry=True)


def _check_streams(info: MediaInfo, config: RulesConfig, reasons: list[str]) -> Decision | None:
    """Rules 8 and 9: an audio stream, and long enough."""
    if not info.audio:
        return Decision(False, [*reasons, "skipped: no audio stream"])
    duration = info.duration
    if duration is None:
        reasons.append("duration unknown; the minimum duration is not checked")
    elif duration < config.min_duration_seconds:
        reason = f"skipped: {duration:.1f} s long, shorter than {config.min_duration_seconds:g} s"
        return Decision(False, [*reasons, f"{reason} (LIBRARY_MIN_DURATION_SECONDS)"], duration=duration)
    else:
        reasons.append(f"{_clock(duration)} long")
    return None


def _wanted_languages(
    source: str | None,
    info: MediaInfo,
    sidecars: Sequence[Sidecar],
    written: Sequence[WrittenSubtitle],
    config: RulesConfig,
    reasons: list[str],
) -> list[JobSpec]:
    """Rule 11, once per wanted language."""
    jobs: list[JobSpec] = []
    for target, same_as in _targets(config, source):
        if same_as is not None:
            reasons.append(f"{target[0]}: the same as {same_as}")
            continue
        job, reason = _decide_target(target, source, info, sidecars, written, config)
        reasons.append(reason)
        if job is not None and job not in jobs:
            jobs.append(job)
    return jobs


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _audio_language(info: MediaInfo, config: RulesConfig) -> tuple[str | None, str]:
    # The same track choice as the worker's, so that the decision is about the audio it will use.
    stream, why = choose_audio_track(info, config.preferred_audio_languages)
    if config.force_language:
        forced = normalize_language(config.force_language) or config.force_language
        return forced, f"audio language {language_name(forced)}, set by FORCE_LANGUAGE"
    if stream.language is None:
        tag = f"tag {stream.raw_language!r} is not a language" if stream.raw_language else "no language tag"
        return None, f"audio language unknown: track #{stream.index} has {tag} ({why})"
    return stream.language, f"audio language {language_name(stream.language)} ({why})"


def _audio_skip_reason(source: str | None, config: RulesConfig) -> str | None:
    if source is None:
        if config.skip_unknown_audio_language:
            return "skipped: audio language unknown (SKIP_UNKNOWN_AUDIO_LANGUAGE)"
        return None
    if source in language_list(config.skip_audio_languages):
        return f"skipped: audio in {language_name(source)} is not transcribed (SKIP_AUDIO_LANGUAGES)"
    return None


def _preferred_tracks(info: MediaInfo, config: RulesConfig, reasons: list[str]) -> str | None:
    """LIMIT_TO_PREFERRED_AUDIO_LANGUAGES, as SubGen's LIMIT_TO_PREFERRED_AUDIO_LANGUAGE: some audio track's
    language tag must be a preferred language (a track without a tag does not count; FORCE_LANGUAGE does not
    change the tracks)."""
    if not config.limit_to_preferred_audio_languages:
        return None
    preferred = language_list(config.preferred_audio_languages)
    wanted = ", ".join(dict.fromkeys(language_name(code) for code in preferred))
    match = next((stream for stream in info.audio if stream.language in preferred), None)
    if match is not None:
        reasons.append(
            f"audio track #{match.index} is in a preferred language, {language_name(match.language)} "
            "(LIMIT_TO_PREFERRED_AUDIO_LANGUAGES)"
        )
        return None
    tracks = ", ".join(
        f"#{stream.index} {language_name(stream.language) if stream.language else 'without a language tag'}"
        for stream in info.audio
    )
    setting = "LIMIT_TO_PREFERRED_AUDIO_LANGUAGES"
    return f"skipped: no audio track in a preferred language ({wanted}); tracks: {tracks} ({setting})"


def _targets(config: RulesConfig, source: str | None) -> list[tuple[tuple[str, str | None], str | None]]:
    """((label as configured, language or None: the audio's own, unknown), label it repeats or None)."""
    first: dict[str | None, str] = {}
    targets = []
    for label in config.target_languages:
        language = source if label == "original" else (normalize_language(label) or label)
        targets.append(((label, language), first.get(language)))
        first.setdefault(language, label)
    return targets


def _decide_target(
    target: tuple[str, str | None],
    source: str | None,
    info: MediaInfo,
    sidecars: Sequence[Sidecar],
    written: Sequence[WrittenSubtitle],
    config: RulesConfig,
) -> tuple[JobSpec | None, str]:
    label, language = target
    prefix = label if language is None or label == language else f"{label} ({language})"
    if language is None:
        if written:
            return None, f"{prefix}: covered by {_names([w.path for w in written])}, written by Transcriptarr"
        return (None, Task.TRANSCRIBE), f"{prefix}: to queue; the worker detects the audio language and transcribes"
    found = _existing(language, info, sidecars, written, config)
    counted = [item for item in found if item.counts]
    if counted:
        return None, f"{prefix}: has {language_name(language)} subtitles: {', '.join(i.text for i in counted)}"
    ignored = f" (not counted: {', '.join(f'{i.text}, {i.why_not}' for i in found)})" if found else ""
    missing = f"no {language_name(language)} subtitles{ignored}"
    return _plan(prefix, language, source, missing, config.whisper_model)


def _plan(prefix: str, language: str, source: str | None, missing: str, model: str) -> tuple[JobSpec | None, str]:
    if source is None:
        name = language_name(language)
        refusal = translation_refusal(model) if model else None
        other = f" only: {refusal}" if refusal else ", or English ones from any language"
        return (
            (whisper_code(language) or language, Task.TRANSCRIBE),
            f"{prefix}: {missing}; to queue; the worker detects the audio language "
            f"(it can make {name} subtitles from {name} audio{other})",
        )
    spoken = whisper_code(source)
    if spoken is None:
        return None, f"{prefix}: {missing}, but Whisper cannot recognise {language_name(source)} audio"
    wanted = None if language == source else (whisper_code(language) or language)
    plan = plan_task(spoken, wanted, model)
    if isinstance(plan, str):
        return None, f"{prefix}: {missing}, but {plan}"
    if plan.task == Task.TRANSLATE:
        how = f"translate the {language_name(source)} audio into English"
        return (plan.target_language, Task.TRANSLATE), f"{prefix}: {missing}; to queue: {how}"
    how = f"transcribe the {language_name(source)} audio"
    return (None, Task.TRANSCRIBE), f"{prefix}: {missing}; to queue: {how}"


@dataclass(frozen=True)
class _Existing:
    text: str
    counts: bool
    why_not: str = ""


def _existing(
    language: str,
    info: MediaInfo,
    sidecars: Sequence[Sidecar],
    written: Sequence[WrittenSubtitle],
    config: RulesConfig,
) -> list[_Existing]:
    ours = {w.path for w in written}
    found = []
    for sidecar in sidecars:
        if sidecar.language == language:
            origin = "written by Transcriptarr" if sidecar.path in ours else "sidecar"
            found.append(_judge(f"{sidecar.name} ({origin})", sidecar.forced, sidecar.image, config))
    named = {s.path for s in sidecars}
    for item in written:
        if item.language == language and item.path not in named:
            found.append(_judge(f"{os.path.basename(item.path)} (written by Transcriptarr)", False, False, config))
    for stream in info.subtitles:
        if stream.language == language:
            text = f"embedded stream #{stream.index} ({stream.codec or 'unknown codec'})"
            found.append(_judge(text, stream.forced, not stream.is_text, config))
    return found


def _judge(text: str, forced: bool, image: bool, config: RulesConfig) -> _Existing:
    # Forced subtitles translate only signs and foreign lines: by default they leave the need open.
    if forced and not config.count_forced_subtitles:
        return _Existing(text, False, "forced only (LIBRARY_COUNT_FORCED_SUBTITLES)")
    if image and not config.count_image_subtitles:
        return _Existing(text, False, "image-based (LIBRARY_COUNT_IMAGE_SUBTITLES)")
    return _Existing(text, True)


def _one_lyrics_file(path: str, jobs: list[JobSpec], sidecars: Sequence[Sidecar], reasons: list[str]) -> list[JobSpec]:
    """AUDIO_LYRICS: an audio file gets one .lrc next to it, whatever the language: at most one job."""
    lyrics = [s for s in sidecars if s.path.lower().endswith(".lrc")]
    if lyrics:
        reasons.append(f"has lyrics: {_names([s.path for s in lyrics])} (audio files get one .lrc: AUDIO_LYRICS)")
        return []
    if len(jobs) > 1:
        reasons.append("audio files get one .lrc (AUDIO_LYRICS): only the first wanted language is queued")
        return jobs[:1]
    if jobs:
        lyrics_name = lyrics_path(PurePath(path)).name  # the name the worker writes (policy/naming.py)
        reasons.append(f"audio files get one .lrc (AUDIO_LYRICS): the job writes {lyrics_name}")
    return jobs


def _names(paths: Sequence[str]) -> str:
    return ", ".join(os.path.basename(p) for p in paths)


def language_name(code: str | None) -> str:
    """ "fr" -> "French"; unknown codes as given."""
    if not code:
        return "unknown"
    for parse in (Language.fromalpha2, Language):
        with contextlib.suppress(ValueError, BabelfishError):
            return str(parse(code).name)
    return code
