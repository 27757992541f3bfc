"""Choosing an audio track, extracting it to 16 kHz mono PCM, reading it back in chunks.

The PCM format is the one Bazarr uploads and Whisper wants: raw signed 16-bit
little-endian, mono, 16 kHz (32,000 bytes per second).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from transcriptarr.cpu_priority import niced_child
from transcriptarr.media.commands import extract_pcm
from transcriptarr.media.probe import AudioStream, MediaInfo, NoAudioError, stderr_tail
from transcriptarr.policy.languages import normalize_language

__all__ = [
    "BYTES_PER_SAMPLE",
    "SAMPLE_RATE",
    "AudioChunk",
    "AudioExtractError",
    "ExtractedAudio",
    "choose_audio_track",
    "decode_pcm_bytes",
    "extract_audio",
    "iter_chunks",
    "load_all",
    "pcm_file_duration",
]

SAMPLE_RATE = 16_000
BYTES_PER_SAMPLE = 2
_PCM_DTYPE = np.dtype("<i2")
_STDERR_TAIL_LINES = 15
_STDERR_KEEP_BYTES = 16_384
# ffmpeg failures caused by this machine rather than by the media file.
_TRANSIENT_MARKERS = (
    "No space left on device",
    "Cannot allocate memory",
    "Resource temporarily unavailable",
)
# The output could not be written. ffmpeg may still exit with status 0 after these
# (a full disk shows only when the trailer is written), leaving the audio cut short.
_DISK_FULL_MARKERS = ("No space left on device", "Disk quota exceeded")
_OUTPUT_FAILED_MARKERS = ("Error writing trailer", "Error closing file", *_DISK_FULL_MARKERS)


class AudioExtractError(Exception):
    """ffmpeg could not extract the audio; ``permanent`` says whether a retry can help."""

    def __init__(self, media: Path | str, problem: str, *, permanent: bool, stderr: str = "") -> None:
        self.path = str(media)
        self.problem = problem
        self.permanent = permanent
        self.stderr = stderr
        message = f"cannot extract audio from {self.path!r}: {problem}"
        if stderr:
            message += f"\nffmpeg said:\n{stderr}"
        super().__init__(message)


@dataclass(frozen=True)
class ExtractedAudio:
    """A raw s16le mono PCM file on disk."""

    path: Path
    duration: float
    sample_rate: int = SAMPLE_RATE

    @classmethod
    def from_pcm_file(cls, path: Path, sample_rate: int = SAMPLE_RATE) -> ExtractedAudio:
        """Wrap an existing PCM file, e.g. an upload in Bazarr's format."""
        return cls(path=path, duration=pcm_file_duration(path, sample_rate), sample_rate=sample_rate)

    @property
    def num_samples(self) -> int:
        return self.path.stat().st_size // BYTES_PER_SAMPLE


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """Part of an ExtractedAudio; ``offset`` is ``start_sample / sample_rate`` exactly."""

    offset: float
    samples: NDArray[np.float32]
    start_sample: int
    sample_rate: int = SAMPLE_RATE

    @property
    def end(self) -> float:
        return (self.start_sample + len(self.samples)) / self.sample_rate


# --- choosing a track -------------------------------------------------------


def choose_audio_track(info: MediaInfo, preferred_languages: Sequence[str]) -> tuple[AudioStream, str]:
    """Pick the track to transcribe and say why.

    Preferred languages are tried in order; among tracks of one language the
    default-flagged one wins (so a commentary track loses to the main one).
    Without a match: the default track, else the first track.
    """
    if not info.audio:
        raise NoAudioError(info.path)
    for wanted in preferred_languages:
        code = normalize_language(wanted)
        matches = [s for s in info.audio if code is not None and s.language == code]
        if matches:
            stream = _default_first(matches)
            return stream, f"{_describe(stream)} matches preferred language {wanted!r}"
    if preferred_languages:
        context = f"no track in preferred languages {list(preferred_languages)!r}"
    else:
        context = "no preferred languages given"
    defaults = [s for s in info.audio if s.default]
    if defaults:
        return defaults[0], f"{context}; using default track {_short(defaults[0])}"
    first = info.audio[0]
    return first, f"{context}; no default track, using first track {_short(first)}"


def _default_first(streams: Sequence[AudioStream]) -> AudioStream:
    return next((s for s in streams if s.default), streams[0])


def _short(stream: AudioStream) -> str:
    return f"#{stream.index} ({stream.raw_language or 'und'})"


def _describe(stream: AudioStream) -> str:
    return f"audio stream {_short(stream)}"


# --- extraction -------------------------------------------------------------


async def extract_audio(
    media: Path,
    stream_index: int,
    dest: Path,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - a per-call limit is the documented API
    pad_start: bool = True,
    nice: int | None = None,
) -> ExtractedAudio:
    """Write stream ``stream_index`` (absolute ffprobe index) of ``media`` to ``dest``.

    The output is raw s16le mono 16 kHz. With ``pad_start`` (default) sample 0
    is media time 0, so subtitle times need no shift for streams that start
    late. ffmpeg writes to ``dest.part`` which is renamed on success and
    removed on failure, timeout or cancellation. ffmpeg runs at nice value
    ``nice`` (WORKER_NICE; None: this process's).
    """
    partial = dest.with_name(dest.name + ".part")
    args = extract_pcm(media, stream_index, partial, sample_rate=SAMPLE_RATE, pad_start=pad_start)
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            # Set in the child before ffmpeg starts, so its decoder threads inherit it too.
            preexec_fn=niced_child(nice),
        )
    except OSError as exc:
        raise AudioExtractError(media, f"could not run ffmpeg: {exc}", permanent=False) from exc
    tail = bytearray()
    try:
        returncode = await asyncio.wait_for(_wait_draining(proc, tail), timeout)
    except TimeoutError:
        await _abort(proc, partial)
        raise AudioExtractError(media, f"ffmpeg did not finish within {timeout:g} s", permanent=False) from None
    except BaseException:  # cancellation included: never leave ffmpeg running
        await _abort(proc, partial)
        raise
    stderr = stderr_tail(bytes(tail), _STDERR_TAIL_LINES)
    if returncode != 0 or any(marker in stderr for marker in _OUTPUT_FAILED_MARKERS):
        _remove(partial)
        raise _failure(media, stream_index, returncode, stderr, partial.parent)
    partial.replace(dest)
    duration = pcm_file_duration(dest)
    if duration == 0:
        _remove(dest)
        raise AudioExtractError(media, f"stream #{stream_index} decoded to no audio at all", permanent=True)
    return ExtractedAudio(path=dest, duration=duration)


async def _wait_draining(proc: asyncio.subprocess.Process, tail: bytearray) -> int:
    # Read stderr as it comes so a chatty ffmpeg never blocks on a full pipe;
    # keep only its end.
    assert proc.stderr is not None
    while chunk := await proc.stderr.read(65536):
        tail += chunk
        del tail[:-_STDERR_KEEP_BYTES]
    return await proc.wait()


async def _abort(proc: asyncio.subprocess.Process, partial: Path) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()
    _remove(partial)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _failure(media: Path, stream_index: int, returncode: int, stderr: str, work_dir: Path) -> AudioExtractError:
    if any(marker in stderr for marker in _DISK_FULL_MARKERS):
        problem = (
            f"no space left in the work folder {work_dir} for the extracted audio; free space there "
            "or set DATA_DIR to a bigger disk"
        )
        return AudioExtractError(media, problem, permanent=False, stderr=stderr)
    if "Read-only file system" in stderr:
        problem = f"the work folder {work_dir} is on a read-only file system; set DATA_DIR to a writable folder"
        return AudioExtractError(media, problem, permanent=True, stderr=stderr)
    if returncode == 0:  # it said it could not write its output (an I/O error), yet exited with 0
        problem = f"ffmpeg could not write the extracted audio to the work folder {work_dir}"
        return AudioExtractError(media, problem, permanent=False, stderr=stderr)
    # Killed by a signal (OOM killer) or out of memory: worth a retry.
    transient = returncode < 0 or any(marker in stderr for marker in _TRANSIENT_MARKERS)
    return AudioExtractError(
        media,
        f"ffmpeg failed on stream #{stream_index} (exit status {returncode})",
        permanent=not transient,
        stderr=stderr,
    )


# --- reading PCM ------------------------------------------------------------


def pcm_file_duration(path: Path, sample_rate: int = SAMPLE_RATE) -> float:
    """Duration of a raw s16le mono file (a trailing odd byte is ignored)."""
    return (path.stat().st_size // BYTES_PER_SAMPLE) / sample_rate


def decode_pcm_bytes(data: bytes) -> NDArray[np.float32]:
    """Raw s16le bytes as float32 samples in [-1, 1)."""
    usable = len(data) - len(data) % BYTES_PER_SAMPLE
    return _to_float(np.frombuffer(data[:usable], dtype=_PCM_DTYPE))


def load_all(audio: ExtractedAudio) -> NDArray[np.float32]:
    """The whole file as float32: for short audio only (64 KB per second)."""
    return _to_float(np.fromfile(audio.path, dtype=_PCM_DTYPE))


def iter_chunks(
    audio: ExtractedAudio,
    *,
    chunk_seconds: float = 1200.0,
    search_seconds: float = 20.0,
    window_seconds: float = 0.3,
) -> Iterator[AudioChunk]:
    """Yield consecutive chunks of at most ``chunk_seconds``, covering every sample once.

    Each cut except the last lies in the quietest ``window_seconds`` window
    (RMS energy) of the chunk's last ``search_seconds``, so no word is split.
    Only one chunk is in memory at a time.
    """
    if chunk_seconds <= 0 or search_seconds < 0:
        raise ValueError("chunk_seconds must be > 0 and search_seconds >= 0")
    rate = audio.sample_rate
    chunk_len = max(1, round(chunk_seconds * rate))
    search_len = min(round(search_seconds * rate), chunk_len // 2)
    window = max(1, round(window_seconds * rate))
    total = audio.num_samples
    with open(audio.path, "rb") as handle:
        start = 0
        while start < total:
            handle.seek(start * BYTES_PER_SAMPLE)
            raw = np.fromfile(handle, dtype=_PCM_DTYPE, count=min(chunk_len, total - start))
            if raw.size == 0:  # file shrank under us
                return
            if start + raw.size < total:
                raw = raw[: _quietest_cut(raw, search_len, window)]
            yield AudioChunk(offset=start / rate, samples=_to_float(raw), start_sample=start, sample_rate=rate)
            start += raw.size


def _quietest_cut(samples: NDArray[np.int16], search_len: int, window: int) -> int:
    """Cut position (exclusive end) at the middle of the quietest window near the end."""
    size = samples.size
    if search_len < window:
        return size
    region = samples[size - search_len :].astype(np.int64)
    # Integer cumsum: exact, so equal energies compare equal.
    energy = np.concatenate(([0], np.cumsum(region * region)))
    sums = energy[window:] - energy[:-window]
    # Latest of the quietest windows keeps chunks as long as possible.
    best = sums.size - 1 - int(np.argmin(sums[::-1]))
    return size - search_len + best + window // 2


def _to_float(pcm: NDArray[np.int16]) -> NDArray[np.float32]:
    return pcm.astype(np.float32) / np.float32(32768.0)
