"""ffprobe wrapper shared by the library scanner and the workers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import stat
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from transcriptarr.media.commands import ffmpeg_path_arg, ffprobe_packets, ffprobe_streams
from transcriptarr.policy.languages import normalize_language

__all__ = [
    "AudioStream",
    "MediaInfo",
    "NoAudioError",
    "ProbeError",
    "ProbeErrorKind",
    "SubtitleStream",
    "ffmpeg_path_arg",
    "incomplete_media",
    "probe_media",
    "probe_media_sync",
    "stderr_tail",
]

ProbeErrorKind = Literal[
    "missing",  # the file does not exist (any more)
    "not_a_file",  # a directory, socket, ...
    "empty",  # zero bytes
    "unreadable",  # stat/open failed for another reason (permissions, dead mount)
    "not_media",  # ffprobe could not read it as media
    "no_audio",  # media, but without an audio stream
    "timeout",  # ffprobe took too long
    "ffprobe_failed",  # ffprobe itself could not be run
]

# Bitmap subtitle codecs: these need OCR, so they do not count as text subtitles.
_IMAGE_SUBTITLE_CODECS = frozenset({"hdmv_pgs_subtitle", "dvd_subtitle", "dvb_subtitle", "xsub", "dvb_teletext"})
_STDERR_TAIL_LINES = 15
# A header that promises more than can be read by more than this is a file still being copied
# (a half-copied mkv already holds the full duration): seconds, or a share of the duration.
_SHORTFALL_SECONDS = 10.0
_SHORTFALL_SHARE = 0.02
# ...unless it has not changed for this long: a truncated file that stays so is taken as it is.
INCOMPLETE_PATIENCE_SECONDS = 3600.0
# Far past any end: ffprobe seeks to the last packets it can find and reads from there.
_PAST_THE_END = "99999999%"
_MEASURE_TIMEOUT_SECONDS = 20.0


class ProbeError(Exception):
    """A file could not be probed; ``permanent`` says whether a retry can help."""

    def __init__(
        self,
        path: Path | str,
        problem: str,
        *,
        kind: ProbeErrorKind,
        permanent: bool,
        stderr: str = "",
    ) -> None:
        self.path = str(path)
        self.problem = problem
        self.kind: ProbeErrorKind = kind
        self.permanent = permanent
        self.stderr = stderr
        message = f"cannot probe {self.path!r}: {problem}"
        if stderr:
            message += f"\nffprobe said:\n{stderr}"
        super().__init__(message)


class NoAudioError(ProbeError):
    """The file is valid media but has no audio stream to transcribe."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, "no audio stream", kind="no_audio", permanent=True)


@dataclass(frozen=True)
class AudioStream:
    index: int  # absolute ffprobe stream index, as used in "-map 0:<index>"
    codec: str | None
    channels: int | None
    language: str | None  # normalised ("en"); None for und/missing
    raw_language: str | None  # the tag as found ("eng")
    default: bool
    title: str | None
    start_time: float


@dataclass(frozen=True)
class SubtitleStream:
    index: int
    codec: str | None
    language: str | None
    raw_language: str | None
    forced: bool
    hearing_impaired: bool
    is_text: bool  # False for bitmap codecs (PGS, VobSub, DVB)
    title: str | None


@dataclass(frozen=True)
class MediaInfo:
    path: str
    duration: float | None
    format_name: str | None
    start_time: float
    audio: tuple[AudioStream, ...]
    subtitles: tuple[SubtitleStream, ...]
    # Where the last packet that can actually be read ends (container time), when measured.
    readable_end: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, for caching probe results."""
        return {
            "path": self.path,
            "duration": self.duration,
            "format_name": self.format_name,
            "start_time": self.start_time,
            "audio": [vars(stream).copy() for stream in self.audio],
            "subtitles": [vars(stream).copy() for stream in self.subtitles],
            "readable_end": self.readable_end,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MediaInfo:
        """Inverse of to_dict; raises ValueError on malformed data (re-probe then)."""
        try:
            return cls(
                path=str(data["path"]),
                duration=_opt_float(data["duration"]),
                format_name=data["format_name"],
                start_time=float(data["start_time"]),
                audio=tuple(AudioStream(**item) for item in data["audio"]),
                subtitles=tuple(SubtitleStream(**item) for item in data["subtitles"]),
                readable_end=_opt_float(data.get("readable_end")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed MediaInfo data: {exc}") from exc


def stderr_tail(stderr: bytes | str, lines: int = _STDERR_TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of a tool's stderr."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


async def probe_media(
    path: Path | str,
    *,
    timeout: float = 60.0,  # noqa: ASYNC109 - a per-call limit is the documented API
    require_audio: bool = True,
    measure_length: bool = False,
) -> MediaInfo:
    """Probe ``path`` with ffprobe without blocking the event loop.

    Raises ProbeError (NoAudioError when ``require_audio`` and there is no
    audio stream). ``measure_length``: also find where the readable data ends
    (``readable_end``; see `incomplete_media`), one more short ffprobe run.
    """
    path = Path(path)
    # stat can hang on a dead network mount, so it runs in a thread too.
    await asyncio.to_thread(_check_file, path)
    try:
        proc = await asyncio.create_subprocess_exec(
            *ffprobe_streams(path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise _ffprobe_unavailable(path, exc) from exc
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        await _kill(proc)
        raise _timed_out(path, timeout) from None
    except BaseException:
        await _kill(proc)
        raise
    returncode = proc.returncode if proc.returncode is not None else -1
    info = _interpret(path, returncode, stdout, stderr, require_audio)
    if measure_length and info.duration:
        info = dataclasses.replace(info, readable_end=await readable_end(path))
    return info


async def readable_end(path: Path | str, *, timeout: float = _MEASURE_TIMEOUT_SECONDS) -> float | None:  # noqa: ASYNC109
    """Where the last readable packet ends, or None when that cannot be told (no packets, an error, too slow).

    ffprobe is asked to start far past the end: it seeks to the last packets it can find (an index
    at the end of a complete file makes that quick) and reads on to the end of what is there."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *ffprobe_packets(path, _PAST_THE_END),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return None
    try:
        stdout, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        await _kill(proc)
        return None
    except BaseException:
        await _kill(proc)
        raise
    return _last_packet_end(stdout)


def _last_packet_end(stdout: bytes) -> float | None:
    try:
        packets = json.loads(stdout).get("packets") or []
    except (ValueError, AttributeError):
        return None
    ends = []
    for packet in packets:
        with contextlib.suppress(TypeError, ValueError):
            start = _opt_float(packet.get("pts_time"))
            if start is not None:
                ends.append(start + (_opt_float(packet.get("duration_time")) or 0.0))
    return max(ends) if ends else None


def incomplete_media(info: MediaInfo, path: Path | str, *, now: float | None = None) -> str | None:
    """Why ``path`` looks still being written (its header promises more than can be read), or None.

    A file that has not changed for INCOMPLETE_PATIENCE_SECONDS is taken as it is (a truncated
    download stays truncated). Blocking: it stats the file."""
    if info.readable_end is None or not info.duration:
        return None
    readable = max(0.0, info.readable_end - info.start_time)
    allowed = max(_SHORTFALL_SECONDS, _SHORTFALL_SHARE * info.duration)
    # Some containers give the duration as a length, others as the last timestamp (a file whose
    # timestamps start at 100 h "lasts" 100 h): either reading being met means the file is whole.
    if info.duration - readable <= allowed or info.duration - info.readable_end <= allowed:
        return None
    try:
        age = (time.time() if now is None else now) - Path(path).stat().st_mtime
    except OSError:
        return None
    if age >= INCOMPLETE_PATIENCE_SECONDS:
        return None
    return (
        f"seems to be still being written: its header says {_clock(info.duration)} long but only "
        f"{_clock(readable)} can be read yet"
    )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def probe_media_sync(path: Path | str, *, timeout: float = 60.0, require_audio: bool = True) -> MediaInfo:
    """Blocking twin of probe_media, for scripts and thread pools."""
    path = Path(path)
    _check_file(path)
    try:
        done = subprocess.run(
            ffprobe_streams(path),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise _timed_out(path, timeout) from None
    except OSError as exc:
        raise _ffprobe_unavailable(path, exc) from exc
    return _interpret(path, done.returncode, done.stdout, done.stderr, require_audio)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


def _check_file(path: Path) -> None:
    """Cheap checks first, so the common failures get a clear message."""
    try:
        st = path.stat()
    except FileNotFoundError:
        # A vanished file will not come back for this job.
        raise ProbeError(path, "file not found", kind="missing", permanent=True) from None
    except OSError as exc:
        raise ProbeError(
            path, f"cannot access file: {exc.strerror or exc}", kind="unreadable", permanent=False
        ) from exc
    if not stat.S_ISREG(st.st_mode):
        raise ProbeError(path, "not a regular file", kind="not_a_file", permanent=True)
    if st.st_size == 0:
        raise ProbeError(path, "file is empty (0 bytes)", kind="empty", permanent=True)


def _timed_out(path: Path, timeout: float) -> ProbeError:
    return ProbeError(path, f"ffprobe did not finish within {timeout:g} s", kind="timeout", permanent=False)


def _ffprobe_unavailable(path: Path, exc: OSError) -> ProbeError:
    return ProbeError(path, f"could not run ffprobe: {exc}", kind="ffprobe_failed", permanent=False)


def _interpret(path: Path, returncode: int, stdout: bytes, stderr: bytes, require_audio: bool) -> MediaInfo:
    if returncode != 0:
        if not path.exists():
            raise ProbeError(path, "file disappeared while probing", kind="missing", permanent=True)
        raise ProbeError(
            path,
            f"not a readable media file (ffprobe exit status {returncode})",
            kind="not_media",
            permanent=True,
            stderr=stderr_tail(stderr),
        )
    try:
        data = json.loads(stdout)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not data.get("streams"):
        raise ProbeError(
            path,
            "not a media file (ffprobe found no streams)",
            kind="not_media",
            permanent=True,
            stderr=stderr_tail(stderr),
        )
    info = _media_info(path, data)
    if require_audio and not info.audio:
        raise NoAudioError(path)
    return info


def _media_info(path: Path, data: Mapping[str, Any]) -> MediaInfo:
    fmt = data.get("format") or {}
    streams = [s for s in data.get("streams", []) if isinstance(s, dict)]
    return MediaInfo(
        path=str(path),
        duration=_opt_float(fmt.get("duration")),
        format_name=fmt.get("format_name"),
        start_time=_opt_float(fmt.get("start_time")) or 0.0,
        audio=tuple(_audio_stream(s) for s in streams if s.get("codec_type") == "audio"),
        subtitles=tuple(_subtitle_stream(s) for s in streams if s.get("codec_type") == "subtitle"),
    )


def _audio_stream(stream: Mapping[str, Any]) -> AudioStream:
    raw_language = _tag(stream, "language")
    channels = stream.get("channels")
    return AudioStream(
        index=int(stream["index"]),
        codec=stream.get("codec_name"),
        channels=int(channels) if channels is not None else None,
        language=normalize_language(raw_language),
        raw_language=raw_language,
        default=_disposition(stream, "default"),
        title=_tag(stream, "title"),
        start_time=_opt_float(stream.get("start_time")) or 0.0,
    )


def _subtitle_stream(stream: Mapping[str, Any]) -> SubtitleStream:
    raw_language = _tag(stream, "language")
    codec = stream.get("codec_name")
    return SubtitleStream(
        index=int(stream["index"]),
        codec=codec,
        language=normalize_language(raw_language),
        raw_language=raw_language,
        forced=_disposition(stream, "forced"),
        hearing_impaired=_disposition(stream, "hearing_impaired"),
        is_text=codec is not None and codec not in _IMAGE_SUBTITLE_CODECS,
        title=_tag(stream, "title"),
    )


def _tag(stream: Mapping[str, Any], name: str) -> str | None:
    # Tag keys differ in case between containers ("language" vs "LANGUAGE").
    for key, value in (stream.get("tags") or {}).items():
        if key.lower() == name and str(value).strip():
            return str(value).strip()
    return None


def _disposition(stream: Mapping[str, Any], name: str) -> bool:
    return bool((stream.get("disposition") or {}).get(name))


def _opt_float(value: Any) -> float | None:
    # ffprobe writes numbers as strings and "N/A" when unknown.
    if value is None or value == "N/A":
        return None
    return float(value)
